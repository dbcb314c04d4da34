"""The medic layer's build (shared/Makefile, run by `sam build` for MedicLayer): what it ships, and its bytecode.

The full build downloads the requirements' Linux wheels (bench/bench_sizes.py runs it, with `sam build` when the
SAM CLI is there, and measures the package). These tests run the offline part: medic without its developer tools,
compiled by the runtime's Python (3.13; skipped where the machine has none) into bytecode the runtime will use.
"""

from __future__ import annotations

import ast
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "shared" / "Makefile"
RUNTIME = "python3.13"
#: What no shipped module may import: the developer package (the CLI, the simulator, the embedded AWS world) and moto.
DEV_ONLY_MODULES = {"medic_tools", "moto"}


def _runtime_python() -> str | None:
    """A Python 3.13 interpreter that runs (a pyenv shim may exist for a version that is not selected)."""
    candidates = [
        os.environ.get("RUNTIME_PYTHON"),
        shutil.which(RUNTIME),
        *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.13*/bin/{RUNTIME}"))),
    ]
    for candidate in candidates:
        if candidate and subprocess.run(
            [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 13))"], capture_output=True, check=False
        ).returncode == 0:  # fmt: skip
            return candidate
    return None


def _make(*targets: str, artifacts: str, **variables: str) -> subprocess.CompletedProcess[str]:
    assignments = [f"{name}={value}" for name, value in {"ARTIFACTS_DIR": artifacts, **variables}.items()]
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", str(MAKEFILE), *targets, *assignments],
        capture_output=True, text=True, check=False, timeout=300, cwd=artifacts or None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """medic as the layer ships it, compiled by Python 3.13 (the requirements, which need PyPI, are left out)."""
    python = _runtime_python()
    if python is None:
        pytest.skip("no Python 3.13 here (the runtime's): the layer's bytecode cannot be built")
    artifacts = tmp_path_factory.mktemp("medic-layer")
    done = _make("medic", "bytecode", artifacts=str(artifacts), RUNTIME_PYTHON=python)
    assert done.returncode == 0, done.stderr
    return artifacts / "python"


def test_sam_builds_the_layer_with_the_makefile_for_the_functions_runtime() -> None:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    layer = text[text.index("  MedicLayer:") : text.index("  RunbookLayer:")]
    assert "ContentUri: shared/" in layer and "BuildMethod: makefile" in layer
    assert "CompatibleRuntimes: [python3.13]" in layer and "BuildArchitecture: arm64" in layer
    assert re.search(r"^    Runtime: python3\.13$", text, re.MULTILINE)  # Globals: the runtime the bytecode is for
    makefile = MAKEFILE.read_text(encoding="utf-8")
    assert re.search(r"^build-MedicLayer:", makefile, re.MULTILINE)  # the target `sam build` runs
    assert "PYTHON_VERSION := 3.13" in makefile and "ARCH ?= aarch64" in makefile


def test_the_layers_requirements_come_from_the_lock_the_tests_run_on(tmp_path: Path) -> None:
    # What make would run (-n: nothing downloaded); tests/unit/test_lock.py checks the lock and the venv against it.
    done = _make("-n", "requirements", artifacts=str(tmp_path), RUNTIME_PYTHON=sys.executable)
    assert done.returncode == 0, done.stderr
    commands = [" ".join(command.split()) for command in done.stdout.replace("\\\n", " ").splitlines()]
    install = next(command for command in commands if " -m pip install " in command)
    assert f'--require-hashes -r "{ROOT}/shared/requirements.lock"' in install
    assert "--only-binary=:all:" in install and "--python-version 3.13" in install
    assert install.count(" -r ") == 1 and "requirements.in" not in install
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(sys.version_info[:2] == (3, 13), reason="this interpreter is the runtime's version")
def test_the_build_refuses_a_python_other_than_the_runtimes(tmp_path: Path) -> None:
    done = _make("bytecode", artifacts=str(tmp_path), RUNTIME_PYTHON=sys.executable)
    assert done.returncode != 0
    assert (
        "needs Python 3.13" in done.stderr and f"is Python {sys.version_info[0]}.{sys.version_info[1]}" in done.stderr
    )
    assert not list(tmp_path.rglob("*.pyc"))


def test_the_build_needs_its_artifacts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # were it to build anyway, it would build here
    done = _make("medic", artifacts="")
    assert done.returncode != 0 and "ARTIFACTS_DIR is not set" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_layer_ships_medic_without_its_developer_tools(layer: Path) -> None:
    assert sorted(path.name for path in layer.iterdir()) == ["medic"]  # not medic_tools, beside it in shared/
    shipped = {path.name for path in (layer / "medic").iterdir()}
    assert {"usecases", "prices.json", "actions", "chatops"} <= shipped  # slack/ is chatops/ since the staging
    assert (layer / "medic" / "usecases" / "interactions.py").is_file()  # interactions.py moved into usecases/
    assert not list(layer.rglob("*.egg-info"))


def test_no_module_the_layer_ships_imports_a_developer_tool(layer: Path) -> None:
    # Imports inside functions included: a lazy import of the simulator would fail only when that path runs.
    offenders = []
    for path in (layer / "medic").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            if any(name == tool or name.startswith(tool + ".") for name in names for tool in DEV_ONLY_MODULES):
                offenders.append(f"{path.relative_to(layer)}:{node.lineno}")
    assert offenders == []


def test_every_module_and_handler_imports_from_the_layer(layer: Path) -> None:
    # This interpreter's requirements stand in for the layer's; medic must come from the layer, whole.
    code = """
import importlib, pkgutil, sys
layer, functions = sys.argv[1], sys.argv[2:]
sys.path.insert(0, layer)
import medic
assert medic.__file__.startswith(layer), medic.__file__
for module in pkgutil.walk_packages(medic.__path__, "medic."):
    importlib.import_module(module.name)
for folder in functions:
    sys.path.insert(0, folder)
    sys.modules.pop("app", None)
    assert callable(importlib.import_module("app").handler), folder
    sys.path.remove(folder)
"""
    functions = [str(path) for path in sorted((ROOT / "functions").iterdir()) if (path / "app.py").is_file()]
    assert len(functions) == 5  # triage, interactions, executor, verifier, digest
    done = subprocess.run(
        [sys.executable, "-c", code, str(layer), *functions], capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_bytecode_is_the_runtimes_and_is_used_without_checking_the_source(layer: Path) -> None:
    python = _runtime_python()
    assert python is not None
    magic = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    sources = sorted((layer / "medic").rglob("*.py"))
    assert sources
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert compiled.is_file(), f"{source.relative_to(layer)} has no cpython-313 bytecode"
        header = compiled.read_bytes()[:8]
        assert header[:4].hex() == magic, compiled
        # PEP 552 flags: bit 0 = hash-based, bit 1 = check_source. Unchecked hash: used as is, the layer is immutable.
        assert int.from_bytes(header[4:8], "little") == 0b01, compiled
    assert not list(layer.rglob("*.cpython-311.pyc"))
    assert importlib.util.MAGIC_NUMBER.hex() != magic or sys.version_info[:2] == (3, 13)
