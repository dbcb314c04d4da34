"""`pip install .` (or pipx) gives a `medic` that works outside a checkout, and the repository says what it is
released under, how it changed and how to report a vulnerability.

The wheel is built by setuptools from pyproject.toml, plus setup.py's one step pyproject cannot say: the shipped
runbook (runbooks/, where the runbook layer finds it) copied into medic/runbooks/, where an installed package's
`medic.config.DEFAULT_RUNBOOK` looks when there is no checkout around it. Built here offline with that same command.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parents[2]


def test_an_installed_medic_finds_its_runbook_outside_a_checkout(tmp_path: Path) -> None:
    command_class = runpy.run_path(str(ROOT / "setup.py"), run_name="setup_under_test")["BuildWithRunbooks"]
    shared = ROOT / "shared"
    packages = find_packages(where=str(shared), include=["medic*"])
    distribution = Distribution({"name": "medic", "packages": packages, "package_dir": {"": str(shared)},
                                 "package_data": {"medic": ["py.typed", "prices.json"]},
                                 "script_name": str(ROOT / "setup.py")})  # fmt: skip
    build = command_class(distribution)
    build.build_lib = str(tmp_path / "lib")
    build.ensure_finalized()
    build.run()

    installed = tmp_path / "lib" / "medic" / "runbooks" / "lambda-latency.yaml"
    assert installed.read_bytes() == (ROOT / "runbooks" / "lambda-latency.yaml").read_bytes()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import medic; from medic.config import DEFAULT_RUNBOOK;"
        "from medic.planning.runbook import load_runbook;"
        "assert medic.__file__.startswith(sys.argv[1]), medic.__file__;"
        "print(DEFAULT_RUNBOOK, load_runbook(DEFAULT_RUNBOOK).name)"
    )
    done = subprocess.run(  # a fresh interpreter: this one imported medic from the checkout
        [sys.executable, "-c", probe, str(tmp_path / "lib")], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(installed), "lambda-latency"]
    assert "include runbooks/*.yaml" in (ROOT / "MANIFEST.in").read_text(encoding="utf-8")  # the sdist carries it


def test_in_a_checkout_the_default_runbook_is_the_repositorys() -> None:
    from medic.config import DEFAULT_RUNBOOK

    assert DEFAULT_RUNBOOK == ROOT / "runbooks" / "lambda-latency.yaml"


def test_the_license_is_the_one_pyproject_declares() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        declared = tomllib.load(file)["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "Copyright 2026 The Medic authors" in text
    assert "[yyyy]" not in text


def test_the_changelog_and_the_security_policy() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "keepachangelog.com" in changelog and "## [Unreleased]" in changelog
    security = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    assert "## Reporting a vulnerability" in security and "## Supported versions" in security
    reliability = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    for section in ("Threat model: the log", "Threat model: approvals and apply"):
        assert f'"{section}"' in security and f"## {section}" in reliability
