"""The remediation log (DynamoDB): `store.Ledger`, the one reader and writer of its two tables, composed of the plans
(`plans`; many at once: `plan_reads`), the plans table's other items (`items`: claims, control flags) and each plan's
hash-chained records (`records`); the tables' keys (`keys`), the chain's format and check (`chain`), the approval
binding the executor checks against the chain (`binding`), the log read for operators (`audit`) and the hourly digests
in locked storage (`digests`)."""
