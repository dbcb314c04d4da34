"""ChatOps in Slack: Block Kit messages, transports, and verified interaction requests."""
