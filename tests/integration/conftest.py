"""Fixtures for the integration tests: one embedded AWS (moto's server over real HTTP) per session, reset per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medic_tools.world.server import DUMMY_CREDENTIAL, EmbeddedAWS

_HERE = Path(__file__).parent
FLOOR = _HERE.parents[1] / "scenarios" / "spillover-fixed-floor.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as `integration`."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def aws_server() -> Iterator[EmbeddedAWS]:
    """The embedded AWS for the whole session (use `aws` in tests: it resets it)."""
    with EmbeddedAWS() as server:
        yield server


@pytest.fixture
def aws(aws_server: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch) -> EmbeddedAWS:
    """The embedded AWS, empty and with default knobs, and the AWS_* environment pointing at it.

    The environment makes boto3 clients built by the code under test talk to the embedded AWS as account
    123456789012 in us-east-1.
    """
    aws_server.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIAL)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIAL)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_server.endpoint_url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return aws_server


@pytest.fixture
def world(aws: EmbeddedAWS) -> Iterator[Callable[..., Any]]:
    """The fixed-floor scenario's world with Medic installed (a `Simulation`); settings may be overridden. A test
    module may define its own `world` (e.g. taking a scenario path): the module's fixture wins."""
    from medic.runtime import install
    from medic_tools.scenario import load_scenario
    from medic_tools.simulate import Simulation, Story
    from medic_tools.world import moto_ext

    def build(**settings: Any) -> Simulation:
        scenario = load_scenario(FLOOR)
        if settings:
            scenario = scenario.model_copy(update={"settings": {**scenario.settings, **settings}})
        sim = Simulation(scenario, str(FLOOR), aws.endpoint_url, Story(None))
        sim.setup()
        return sim

    yield build
    install(None)
    moto_ext.reset_knobs()


@pytest.fixture
def after_visibility_timeout() -> Callable[[Any], None]:
    """Moves a simulation's clock past its executor queue's visibility timeout: when SQS shows a message that an
    executor failed (or died on) again. Its lease on the plan has expired by then (the lease is the executor's
    timeout, under the visibility timeout), so the redelivery may take the plan over."""

    def advance(sim: Any) -> None:
        attributes = sim.clients.sqs.get_queue_attributes(QueueUrl=sim.infra["queue"],
                                                          AttributeNames=["VisibilityTimeout"])  # fmt: skip
        sim.clock.advance(int(attributes["Attributes"]["VisibilityTimeout"]))

    return advance
