"""ChatOps in Slack: Block Kit cards (`blocks`), the metric graph in a card's thread (`graph`), the transports
(`transport`), the verified request models (`requests`), who may decide a plan and how many must (`approvals`), the
answers and the refusals kept in the log (`responses`), and the `/medic` command's texts (`commands`). The Slack use
case itself is medic.usecases.interactions."""

import re

#: Plan ids as triage makes them (`p-` + 16 hex) and re-proposals (`-r1`): anything else is not a button of Medic's.
PLAN_ID = re.compile(r"p-[0-9a-f]{16}(-r[0-9]{1,2})?")
