"""One lock for the layer and the tests: shared/requirements.lock pins what the Medic layer ships.

shared/requirements.in holds the ranges (the same as pyproject's [project].dependencies, less boto3, which the Lambda
runtime provides); `make lock` resolves them with every dependency, pinned, with the hashes of every file PyPI has
for each pin (so the layer's python3.13 arm64 wheels and this venv's alike). shared/Makefile builds the layer from
the lock, hash-checked (tests/unit/test_layer_build.py), and the root Makefile installs it into .venv before the
developer tools, which it holds to the lock's pins. So the tests run on exactly the versions the layer ships: once,
the layer shipped another pydantic than the tests ran, because a developer tool held .venv's back.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "shared" / "requirements.lock"
LOCK_INPUT = ROOT / "shared" / "requirements.in"
#: In pyproject's dependencies for the tests and the CLI, and never in the layer: the Lambda runtime has it.
RUNTIME_PROVIDED = {"boto3"}


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def version(self) -> str:
        return next(iter(self.requirement.specifier)).version

    def applies_here(self) -> bool:
        marker = self.requirement.marker
        return marker is None or marker.evaluate()


def _requirement_lines(path: Path) -> list[str]:
    """A requirements file's entries, continuation lines joined and comments dropped."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def _pins() -> dict[str, Pin]:
    pins = {}
    for line in _requirement_lines(LOCK):
        requirement, *options = re.split(r"\s+(?=--)", line)
        assert all(option.startswith("--hash=sha256:") for option in options), line  # no index or other options
        pin = Pin(Requirement(requirement), tuple(option.removeprefix("--hash=sha256:") for option in options))
        name = canonicalize_name(pin.requirement.name)
        assert name not in pins, f"{name} pinned twice"
        pins[name] = pin
    return pins


def _top_level(requirements: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in requirements]
    return {canonicalize_name(requirement.name): requirement for requirement in parsed}


def _pyproject_runtime() -> dict[str, Requirement]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    return {name: req for name, req in _top_level(dependencies).items() if name not in RUNTIME_PROVIDED}


def test_the_lock_input_names_pyprojects_runtime_requirements_with_the_same_ranges() -> None:
    # Two lists of one thing: pyproject's, which pip reads when medic is installed, and the lock's input.
    declared = _pyproject_runtime()
    lock_input = _top_level(_requirement_lines(LOCK_INPUT))
    assert {name: str(req) for name, req in lock_input.items()} == {name: str(req) for name, req in declared.items()}
    assert {"pydantic", "pyyaml", "structlog", "slack-sdk"} <= declared.keys()
    assert not RUNTIME_PROVIDED & lock_input.keys()


def test_every_requirement_is_pinned_within_its_range_with_the_hashes_pip_checks() -> None:
    pins = _pins()
    for name, requirement in _pyproject_runtime().items():
        assert name in pins, f"{name} is not in the lock: run `make lock`"
        assert requirement.specifier.contains(pins[name].version, prereleases=True), (name, pins[name].version)
    for name, pin in pins.items():
        assert len(pin.requirement.specifier) == 1 and next(iter(pin.requirement.specifier)).operator == "==", name
        assert pin.hashes and all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in pin.hashes), name
        assert name not in RUNTIME_PROVIDED and name not in {"botocore", "s3transfer", "jmespath"}, name
    header = LOCK.read_text(encoding="utf-8").splitlines()[:2]
    assert header[1].strip() == "#    make lock"  # how to regenerate it, at the top


def test_this_venv_runs_on_the_versions_the_layer_ships() -> None:
    # The check that would have caught the layer shipping another pydantic than the tests ran.
    wrong = {}
    for name, pin in _pins().items():
        if not pin.applies_here():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pin.version:
            wrong[name] = f"{installed}, locked {pin.version}"
    assert wrong == {}, "this environment is not the lock's: `make .venv/.installed` rebuilds .venv from it"


def test_the_lock_holds_every_package_its_packages_need() -> None:
    # pip checks it too when it builds the layer (with hashes, an unpinned dependency is refused); this says which.
    pins = _pins()
    environment = {**default_environment(), "extra": ""}
    missing = []
    for name, pin in pins.items():
        if not pin.applies_here():
            continue
        for line in metadata.requires(name) or []:
            needed = Requirement(line)
            if needed.marker is not None and not needed.marker.evaluate(environment):
                continue
            dependency = canonicalize_name(needed.name)
            if dependency not in pins or not needed.specifier.contains(pins[dependency].version, prereleases=True):
                missing.append(f"{name} needs {needed}")
    assert missing == []


def test_the_venv_installs_the_lock_then_holds_the_developer_tools_to_it() -> None:
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", ".venv/.installed"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    commands = [line for line in recipe.splitlines() if "pip install" in line]
    assert "--require-hashes -r shared/requirements.lock" in commands[1]
    assert re.search(r"pip install --quiet -e '\.\[dev\]' -c \S+constraints\.txt$", commands[2])
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(LOCK\)$", makefile, re.MULTILINE)  # a new lock rebuilds .venv
    assert re.search(r"^LOCK := shared/requirements\.lock$", makefile, re.MULTILINE)
    assert re.search(r"^lock:", makefile, re.MULTILINE)
