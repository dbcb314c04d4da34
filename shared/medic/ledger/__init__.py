"""The remediation log (DynamoDB): the plans table and each plan's hash-chained records (`store`), the chain's format
(`chain`), the approval binding the executor checks against the chain (`binding`), the audit of the tables (`audit`)
and the hourly digests in locked storage (`digests`)."""
