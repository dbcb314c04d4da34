"""7. Package sizes and precompiled bytecode: what a deployment ships, measured, and what the bytecode saves.

The package is built the way a deployment builds it: `sam build` without a container when the SAM CLI is there
(`SAM=/path/to/sam`, else `sam` on PATH), else the same two steps by hand (shared/Makefile's build-MedicLayer, and
the functions' folders, which `sam build` copies as they are). Per function: its code + the medic layer + the
runbook layer (deployed from runbooks/ as it is), unzipped and zipped, against the 10 MB target; the runtime's
boto3/botocore are not counted, and the layer is checked to ship none. For comparison, the layer as `sam build`'s
own Python builder made it before (every requirement's file, all of medic, no bytecode).

The bytecode's effect at cold start, on this machine: the layer built again for x86_64 (the deployed one is arm64,
whose native extensions cannot load here), once as shipped (precompiled by Python 3.13) and once the same files
with sources and no bytecode (what `sam build` ships without the makefile). Fresh Python 3.13 processes (-I -B,
so nothing is compiled to disk between runs) import each function's handler module (Lambda's init phase), and
separately every module of the layer a function may import on its first events. boto3 is not imported: the
runtime ships it precompiled, and Medic imports it lazily. Section 1 measures the whole cold start (interpreter,
imports, the first event's AWS calls) with and without bytecode, on the bench's Python.

Needs Python 3.13 (the runtime's; `RUNTIME_PYTHON`, `python3.13` on PATH or a pyenv 3.13) and PyPI (the
requirements' Linux wheels).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from report import OUT, Stat, Target, mode_note, save, say, size, table

SECTION = "sizes"
ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "shared" / "Makefile"
FUNCTIONS = ("triage", "interactions", "executor", "verifier")
LOGICAL_IDS = {name: f"{name.title()}Function" for name in FUNCTIONS}
LIMIT_MB = 10.0
MB = 1024 * 1024  # Lambda's own limits (250 MB unzipped) are in MiB
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3")

#: What a function's first events may import from the layer beyond its handler module (lazily, in the handlers).
LAYER_IMPORTS = """
import importlib, pkgutil
import medic
for module in pkgutil.walk_packages(medic.__path__, "medic."):
    importlib.import_module(module.name)
import slack_sdk, slack_sdk.webhook, slack_sdk.signature, slack_sdk.http_retry.builtin_handlers
"""


@dataclass
class Build:
    how: str  # "sam build" or "make"
    seconds: float
    functions: dict[str, Path]  # name → the built function folder
    layer: Path  # the medic layer's root (holds python/)
    runbooks: Path


def runtime_python() -> str | None:
    candidates = [
        os.environ.get("RUNTIME_PYTHON"),
        shutil.which("python3.13"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13"))),
    ]
    for candidate in candidates:
        if (
            candidate
            and subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 13))"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            return candidate
    return None


def sam_cli() -> str | None:
    return os.environ.get("SAM") or shutil.which("sam")


def make(artifacts: Path, python: str, *targets: str, **variables: str) -> None:
    assignments = [
        f"{k}={v}" for k, v in {"ARTIFACTS_DIR": str(artifacts), "RUNTIME_PYTHON": python, **variables}.items()
    ]
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", str(MAKEFILE), *targets, *assignments],
        capture_output=True,
        text=True,
        check=False,
        cwd=artifacts.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"make {' '.join(targets)} failed: {done.stderr[-3000:]}")


def build(work: Path, python: str) -> Build:
    """The deployment package: `sam build` (no container) when the SAM CLI is here, else the makefile by hand."""
    sam = sam_cli()
    started = time.perf_counter()
    if sam:
        say(f"7. sizes: sam build (no container) with {sam}")
        env = {
            **os.environ,
            "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "SAM_CLI_TELEMETRY": "0",
        }
        done = subprocess.run(
            [
                sam,
                "build",
                "--template-file",
                str(ROOT / "template.yaml"),
                "--build-dir",
                str(work / "build"),
                "--cache-dir",
                str(work / "cache"),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env=env,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sam build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        out = work / "build"
        functions = {name: out / logical for name, logical in LOGICAL_IDS.items()}
        return Build("sam build", time.perf_counter() - started, functions, out / "MedicLayer", ROOT / "runbooks")
    say("7. sizes: no SAM CLI here: the makefile build, and the functions' folders as sam copies them")
    make(work / "MedicLayer", python, "build-MedicLayer")
    functions = {}
    for name in FUNCTIONS:
        functions[name] = work / LOGICAL_IDS[name]
        shutil.copytree(ROOT / "functions" / name, functions[name])
    return Build("make", time.perf_counter() - started, functions, work / "MedicLayer", ROOT / "runbooks")


def unzipped(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def zipped(root: Path) -> int:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(root))
    return len(buffer.getvalue())


def mb(n: float) -> str:
    return f"{n / MB:.2f} MB"


def breakdown(layer: Path, top: int = 8) -> list[list[str]]:
    sizes: dict[str, int] = {}
    for entry in (layer / "python").iterdir():
        name = re.sub(r"-[\d.]+\.dist-info$", " (dist-info)", entry.name)
        if name.endswith("(dist-info)"):
            name = "dist-info (all)"
        sizes[name] = sizes.get(name, 0) + (unzipped(entry) if entry.is_dir() else entry.stat().st_size)
    ranked = sorted(sizes.items(), key=lambda item: -item[1])
    rows = [[name, mb(value)] for name, value in ranked[:top]]
    rest = sum(value for _, value in ranked[top:])
    if rest:
        rows.append([f"{len(ranked) - top} more", mb(rest)])
    return rows


def bytecode_check(layer: Path, magic: str) -> tuple[bool, str]:
    """Every medic module has unchecked-hash cpython-313 bytecode; the requirements are bytecode only."""
    python = layer / "python"
    problems = []
    for source in (python / "medic").rglob("*.py"):
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        header = compiled.read_bytes()[:8] if compiled.is_file() else b""
        if header[:4].hex() != magic or int.from_bytes(header[4:8], "little") != 1:
            problems.append(str(source.relative_to(python)))
    sources = [p for p in python.rglob("*.py") if "medic" not in p.relative_to(python).parts[:1]]
    pycs = [p for p in python.rglob("*.pyc") if "medic" not in p.relative_to(python).parts[:1]]
    medic_modules = len(list((python / "medic").rglob("*.py")))
    ok = not problems and not sources and bool(pycs)
    detail = (
        f"{medic_modules} medic modules with unchecked-hash cpython-313 bytecode; requirements: {len(pycs)} "
        f"modules as bytecode, {len(sources)} as source" + (f"; missing: {problems[:5]}" if problems else "")
    )
    return ok, detail


# -- the bytecode's effect -----------------------------------------------------------------------------


def spawn(python: str, code: str, path: list[Path]) -> float:
    """Wall time of a fresh `python -I -B` importing what `code` imports, with `path` in front of sys.path."""
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in path]!r}\n"
    started = time.perf_counter()
    subprocess.run(
        [python, "-I", "-B", "-c", prelude + code],
        check=True,
        cwd=path[0],
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def cold_imports(python: str, work: Path, runs: int) -> tuple[dict[str, dict[str, Stat]], dict[str, Stat], float]:
    """Per function and variant, spawn → `import app` done; per variant, the whole layer; and `python -c pass`."""
    precompiled, sources = work / "x86-precompiled", work / "x86-sources"
    make(precompiled, python, "build-MedicLayer", ARCH="x86_64")
    make(sources, python, "requirements", "medic", ARCH="x86_64")
    variants = {"precompiled": precompiled / "python", "no bytecode": sources / "python"}  # the same files otherwise
    per_function: dict[str, dict[str, list[float]]] = {f: {v: [] for v in variants} for f in FUNCTIONS}
    whole: dict[str, list[float]] = {v: [] for v in variants}
    floor: list[float] = []
    spawn(python, "import medic", [variants["precompiled"]])  # warm the file cache (discarded)
    for run in range(runs):
        say(f"7. sizes: cold imports, run {run + 1}/{runs}")
        floor.append(spawn(python, "pass", [work]))
        for variant, layer in variants.items():  # interleaved, so that load on the machine hits both alike
            for function in FUNCTIONS:
                task = ROOT / "functions" / function
                per_function[function][variant].append(spawn(python, "import app", [task, layer]))
            whole[variant].append(spawn(python, LAYER_IMPORTS, [layer, work]))
    return (
        {f: {v: Stat.of(times) for v, times in by.items()} for f, by in per_function.items()},
        {v: Stat.of(times) for v, times in whole.items()},
        statistics.median(floor),
    )


def section_one() -> str:
    """What section 1 measured about bytecode (the whole cold start), when it has run."""
    path = OUT / "cold_start.json"
    if not path.exists():
        return "Section 1 (the whole cold start with and without bytecode) has not run yet."
    doc = json.loads(path.read_text())
    saves = re.findall(r"^\| \*\*(\w+)\*\* \| [^|]+\| [^|]+\| \+?(-?\d+) ms \|", doc["body"], re.MULTILINE)
    python = re.search(r"Python ([\d.]+)", doc.get("environment", ""))
    if not saves:
        return "Section 1 measures the whole cold start with and without bytecode."
    listed = ", ".join(f"{name} {ms} ms" for name, ms in saves)
    return (
        f"Section 1, the whole cold start (interpreter, imports, first event with its AWS calls; Python "
        f"{python.group(1) if python else '?'}): bytecode saves {listed}."
    )


def main() -> None:
    python = runtime_python()
    if python is None:
        sys.exit("7. sizes: needs Python 3.13 (the Lambda runtime's) to build the layer: set RUNTIME_PYTHON")
    magic = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    runs = size(9, 2)
    work = Path(tempfile.mkdtemp(prefix="medic-bench-sizes-"))
    try:
        deployed = build(work, python)
        legacy = work / "sam-python-builder"
        make(legacy, python, "requirements", "medic", REQUIREMENTS_UNUSED="", DEV_ONLY="")
        layer_size, layer_zip = unzipped(deployed.layer), zipped(deployed.layer)
        runbook_size, runbook_zip = unzipped(deployed.runbooks), zipped(deployed.runbooks)
        shipped_runtime = [p.name for p in (deployed.layer / "python").iterdir() if p.name in RUNTIME_PACKAGES]
        rows, totals = [], []
        for name, folder in deployed.functions.items():
            code, code_zip = unzipped(folder), zipped(folder)
            total = code + layer_size + runbook_size
            totals.append(total)
            rows.append(
                [
                    f"**{name}**",
                    f"{code:,} B",
                    mb(layer_size),
                    mb(runbook_size),
                    f"**{mb(total)}**",
                    mb(code_zip + layer_zip + runbook_zip),
                    "yes" if total < LIMIT_MB * MB else "**no**",
                ]
            )
        legacy_size = unzipped(legacy)
        ok_bytecode, bytecode_detail = bytecode_check(deployed.layer, magic)
        parts = breakdown(deployed.layer)
        per_function, whole, floor = cold_imports(python, work, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    worst = max(totals)
    targets = [
        Target(
            "function + layers, unzipped, without the runtime's boto3",
            f"< {LIMIT_MB:.0f} MB",
            f"{mb(worst)} (largest of the four; boto3/botocore shipped: {', '.join(shipped_runtime) or 'none'})",
            worst < LIMIT_MB * MB and not shipped_runtime,
        ),
        Target(
            "the layer carries the runtime's bytecode",
            "cpython-313, used without a source check",
            bytecode_detail,
            ok_bytecode,
        ),
    ]
    if deployed.how == "sam build":
        targets.append(Target("`sam build` without a container", "builds", f"built in {deployed.seconds:.0f} s", True))
    import_rows = []
    for function, by in per_function.items():
        pre, src = by["precompiled"], by["no bytecode"]
        import_rows.append(
            [
                f"**{function}**",
                pre.ms(),
                src.ms(),
                f"**{(src.median - pre.median) * 1000:+.0f} ms**",
                f"{src.median / pre.median:.2f}×",
            ]
        )
    pre, src = whole["precompiled"], whole["no bytecode"]
    import_rows.append(
        [
            "every module of the layer",
            pre.ms(),
            src.ms(),
            f"**{(src.median - pre.median) * 1000:+.0f} ms**",
            f"{src.median / pre.median:.2f}×",
        ]
    )
    how = (
        f"`sam build` (SAM CLI, no container, Python 3.13 on PATH) in {deployed.seconds:.0f} s"
        if deployed.how == "sam build"
        else f"shared/Makefile's build-MedicLayer (no SAM CLI on this machine: what `sam build` runs) in "
        f"{deployed.seconds:.0f} s"
    )
    body = "\n".join(
        [
            mode_note() + f"Built with {how}: the medic layer for arm64 (the requirements' manylinux wheels, medic "
            "without its developer tools, bytecode by Python 3.13), the functions' folders as they are; the runbook "
            "layer is runbooks/ as deployed. MB = 2^20 bytes, as in Lambda's limits; unzipped = what Lambda counts "
            "against its 250 MB; zipped = deflate level 6, about what `sam deploy` uploads.",
            "",
            table(
                [
                    "function",
                    "its code",
                    "+ medic layer",
                    "+ runbook layer",
                    "unzipped",
                    "zipped",
                    f"< {LIMIT_MB:.0f} MB",
                ],
                rows,
            ),
            "",
            f"The medic layer before this build (what `sam build`'s Python builder shipped: every file of every "
            f"requirement, all of medic, sources only) was {mb(legacy_size)} unzipped; now {mb(layer_size)}. Largest "
            "parts of the layer now:",
            "",
            table(["part", "unzipped"], parts),
            "",
            f"The layer's bytecode: {bytecode_detail}.",
            "",
            f"**Cold imports with and without the bytecode** (Python 3.13, x86_64 build of the same layer; "
            f"{runs} fresh processes per cell, interleaved; `python -I -B -c pass` takes {floor * 1000:.0f} ms): "
            "spawn → the handler module imported (Lambda's init phase), and spawn → every module of the layer a "
            "function may import later.",
            "",
            table(["imports", "precompiled", "no bytecode", "bytecode saves", "ratio"], import_rows),
            "",
            section_one(),
        ]
    )
    save(SECTION, body, targets)
    say(body)


if __name__ == "__main__":
    main()
