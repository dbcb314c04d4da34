"""Hypothesis profiles for the property tests and fuzzers of this folder.

- ``medic`` (the default): a bounded, derandomized run, so that ``make test`` stays fast and a failure in CI is the
  same failure on a laptop. No example database is written.
- ``long``: ``MEDIC_FUZZ=long`` (or ``HYPOTHESIS_PROFILE=long``): 50× the examples, random seeds, and the examples
  that failed are kept in ``.hypothesis/`` (or ``MEDIC_FUZZ_DB``) and replayed first on the next run.

``MEDIC_FUZZ_EXAMPLES=N`` sets the base number of examples of either profile (each test scales it by its own cost,
see `fuzzing.examples`). No deadline: a loaded CI machine must not turn a slow example into a failure.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_BASE = {"medic": 100, "long": 5000}
_examples = os.environ.get("MEDIC_FUZZ_EXAMPLES")

settings.register_profile(
    "medic",
    max_examples=int(_examples) if _examples else _BASE["medic"],
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=int(_examples) if _examples else _BASE["long"],
    database=DirectoryBasedExampleDatabase(os.environ.get("MEDIC_FUZZ_DB", ".hypothesis")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("long" if os.environ.get("MEDIC_FUZZ") == "long" else "medic")
)
