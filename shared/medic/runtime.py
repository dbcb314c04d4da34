"""The runtime of one execution environment: settings, clients, clock, ledger, runbook, Slack.

Built once per environment (at the first invocation: lazily, not at import) and reused while
warm. Tests and the simulator install their own with `install()`; explicit arguments win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import IO, TYPE_CHECKING

from medic.aws import AwsClients
from medic.clock import Clock, SystemClock
from medic.config import Settings

if TYPE_CHECKING:
    from medic.chatops.transport import SlackTransport
    from medic.facts import FactCollector
    from medic.ledger.store import Ledger
    from medic.plan import Plan
    from medic.planning.runbook import Runbook, RunbookStore
    from medic.safety import SafetyControls


#: The metric counting runbook files refused (namespace Medic; dimension Outcome: notify_only, kept_last_good, or
#: no_runbook when the base itself is refused and Medic cannot decide).
RUNBOOK_REFUSED = "RunbookRefused"

#: Seconds a secret read from Secrets Manager is reused: a rotated Slack secret or bot token is picked up within it.
SECRET_TTL_S = 300
#: After a Slack signature failed, the signing secret is read again at most once per this many seconds.
SECRET_REREAD_S = 60


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clients: AwsClients | None = None,
        clock: Clock | None = None,
        slack: SlackTransport | None = None,
        runbook: Runbook | None = None,
        metrics_stream: IO[str] | None = None,
    ) -> None:
        self.settings = settings
        self._runbook = runbook
        self.metrics_stream = metrics_stream  # None: stdout (Lambda ships it to CloudWatch Logs, which reads EMF)
        self.clients = clients or AwsClients(region=settings.region)
        self.clock: Clock = clock or SystemClock()
        self._slack = slack
        self._secrets: dict[str, _Secret] = {}

    @cached_property
    def ledger(self) -> Ledger:
        from medic.ledger.store import Ledger

        return Ledger(self.clients.dynamodb, self.settings.plans_table, self.settings.events_table)

    @property
    def runbook(self) -> Runbook:
        """The runbook to decide with (base + overrides); a changed file is reloaded. A refused change keeps the last
        good layered runbook; an override refused with none to keep fails closed (every plan advice, saying why)."""
        return self._runbook or self.runbook_store.current()

    @cached_property
    def runbook_store(self) -> RunbookStore:
        from medic.log import get_logger
        from medic.metrics import emit, metric_document
        from medic.planning.runbook import RunbookStore

        def refused(error: Exception) -> None:
            outcome = "notify_only" if store.notify_only else "kept_last_good" if store.loaded else "no_runbook"
            get_logger(component="runbook").error("runbook_refused", error=str(error), outcome=outcome)
            emit(
                metric_document({RUNBOOK_REFUSED: (1, "Count")}, {"Outcome": outcome}, at=self.clock.now()),
                self.metrics_stream,
            )

        store = RunbookStore(self.settings.runbook_path, self.settings.runbook_overrides, refused)
        return store

    @cached_property
    def safety(self) -> SafetyControls:
        from medic.safety import SafetyControls

        return SafetyControls(self.ledger, self.settings)

    @cached_property
    def collector(self) -> FactCollector:
        from medic.facts import FactCollector

        return FactCollector(self.clients, self.settings.opt_in_tag)

    @property
    def slack(self) -> SlackTransport | None:
        """The Slack transport: injected, else the Web API with the bot token from Secrets Manager, read at its first
        Web API call (a card replaced through a click's response_url needs no token, so it reads none)."""
        if self._slack is None and self.settings.slack_bot_token_secret_arn:
            from medic.chatops.transport import WebApiTransport

            arn = self.settings.slack_bot_token_secret_arn
            self._slack = WebApiTransport(lambda: self.secret(arn), self.settings.slack_api_url)
        return self._slack

    @property
    def signing_secret(self) -> str:
        """Slack's signing secret, read at most every `SECRET_TTL_S` (a rotated secret is picked up without a
        redeploy)."""
        return self.secret(self.settings.slack_signing_secret_arn) if self.settings.slack_signing_secret_arn else ""

    def reread_signing_secret(self) -> str | None:
        """After a signature failed: the signing secret read again (it may have been rotated since it was cached),
        at most once per `SECRET_REREAD_S`, so that forged requests cannot make each one cost a read. None when it
        was read within that time (the failure stands)."""
        arn = self.settings.slack_signing_secret_arn
        cached = self._secrets.get(arn)
        if not arn or (cached is not None and self.clock.now() < cached.read_at + timedelta(seconds=SECRET_REREAD_S)):
            return None
        return self.secret(arn, fresh=True)

    def emit_outcome(self, plan: Plan) -> None:
        """Count the plan's outcome and, by state, the time from the alarm to it (EMF, no API call)."""
        from medic.metrics import emit, latency, plan_outcome, seconds_since

        now = self.clock.now()
        emit(plan_outcome(plan.signal, plan.status, at=now), self.metrics_stream)
        name = {
            "PROPOSED": "TimeToPlan",
            "APPROVED": "TimeToPlan",
            "APPLIED": "TimeToApply",
            "VERIFIED": "TimeToVerify",
        }.get(plan.status)
        if name and plan.state_timestamp:
            emit(latency(name, seconds_since(plan.state_timestamp, now), plan.signal, at=now), self.metrics_stream)

    def secret(self, arn: str, *, fresh: bool = False) -> str:
        """A secret's string value (never logged), reused for `SECRET_TTL_S` after it was read; `fresh` reads it now."""
        now = self.clock.now()
        cached = self._secrets.get(arn)
        if fresh or cached is None or now >= cached.read_at + timedelta(seconds=SECRET_TTL_S):
            value = self.clients.secrets.get_secret_value(SecretId=arn)["SecretString"]
            cached = self._secrets[arn] = _Secret(str(value), now)
        return cached.value


@dataclass(frozen=True)
class _Secret:
    value: str
    read_at: datetime


_current: Runtime | None = None


def current() -> Runtime:
    """The runtime of this execution environment, built from the environment on first use."""
    global _current  # noqa: PLW0603 - the init-scope cache, reused across warm invocations
    if _current is None:
        _current = Runtime(Settings.from_env())
    return _current


def install(runtime: Runtime | None) -> None:
    """Use `runtime` for the following invocations (None: rebuild from the environment next time)."""
    global _current  # noqa: PLW0603
    _current = runtime
