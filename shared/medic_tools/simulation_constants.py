"""The simulator's fixed names: the account of the embedded world, the Slack workspace the cards go to, the approvers
who click them, and where the repository is (the real handlers are loaded from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Decide = Literal["approve", "reject", "none"]
REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
CHANNEL, TEAM, APP, APPROVER = "C0MEDICOPS", "T0MEDIC", "A0MEDIC", "U0ONCALL"
#: The second approver the two-person rule asks for (quota requests, memory changes, reserved-concurrency cuts).
SECOND_APPROVER = "U0SECOND"
