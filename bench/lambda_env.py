"""An emulated Lambda execution environment: a fresh `python -c` process that imports a handler and
answers events, cold first and warm after, like the Python runtime does.

The package is laid out as Lambda lays it out: the function's folder is the task root (`app.py`), the
layer is `<opt>/python` on PYTHONPATH (Medic + the layer's requirements, or c7n + its requirements),
boto3/botocore come from the interpreter's site-packages with their bytecode (the runtime ships them
compiled). `Package.build(precompiled=...)` copies the code into a temporary folder and either runs
`compileall` over it, or leaves it without any `__pycache__`; the child always runs with
PYTHONDONTWRITEBYTECODE=1, so a copy without bytecode stays without it run after run (as on Lambda,
whose code folder is read-only).

The child answers on a pipe of its own (not stdout/stderr: those are the function's logs, which go to a
file as CloudWatch Logs would get them). The parent measures the cold start from spawning the process to
the first answer; the child reports its own init (imports) and handler durations, and its peak RSS.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

#: What the child runs: the runtime's bootstrap in a few lines. `{init}` imports the handler module (the
#: function's init phase); `{handler}` is called once per event line on stdin.
BOOTSTRAP = """
import json, os, sys, time
_t0 = time.perf_counter()
_out = os.fdopen(int(os.environ["BENCH_FD"]), "w", buffering=1)
_root = os.environ.get("LAMBDA_TASK_ROOT")
if _root:
    sys.path.insert(0, _root)
    os.chdir(_root)
{init}
_t1 = time.perf_counter()

class _Context:
    aws_request_id = "bench-request"
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = 512
    def get_remaining_time_in_millis(self):
        return 60000

for _line in sys.stdin:
    _s = time.perf_counter()
    _result = {handler}(json.loads(_line), _Context())
    _e = time.perf_counter()
    # VmHWM: this process's peak RSS (ru_maxrss would include the parent's image, kept across fork + exec)
    with open("/proc/self/status") as _status:
        _rss = next(int(l.split()[1]) for l in _status if l.startswith("VmHWM:"))
    _out.write(json.dumps({{"init_s": _t1 - _t0, "handle_s": _e - _s, "maxrss_kb": _rss,
                           "modules": len(sys.modules), "result": _result}}, default=str) + "\\n")
"""

#: Lambda's environment, minus anything that could reach a real AWS account.
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
}


def closure(*requirements: str) -> list[str]:
    """The installed distributions `requirements` need (their own dependencies included, extras excluded)."""
    names: list[str] = []
    todo = list(requirements)
    while todo:
        requirement = Requirement(todo.pop())
        name = metadata.distribution(requirement.name).metadata["Name"]
        if name.lower() in (n.lower() for n in names):
            continue
        names.append(name)
        for dependency in metadata.requires(name) or []:
            parsed = Requirement(dependency)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(dependency)
    return names


@dataclass
class Package:
    """A function's code as Lambda would hold it: task root + layer, with or without bytecode."""

    root: Path
    task_root: Path
    layer: Path
    precompiled: bool

    @classmethod
    def build(
        cls,
        *,
        function: Path | None,
        packages: list[str],
        extra: dict[str, Path],
        precompiled: bool,
        skip: tuple[str, ...] = (),
    ) -> Package:
        """Copy `function` (a folder with app.py), the distributions `packages` (from this interpreter's
        site-packages, without their bytecode) and `extra` (name → file or folder, into the layer), then
        compile everything when `precompiled`. Distributions in `skip` stay in site-packages (boto3)."""
        root = Path(tempfile.mkdtemp(prefix="medic-bench-"))
        task_root, layer = root / "task", root / "opt" / "python"
        task_root.mkdir(parents=True)
        layer.mkdir(parents=True)
        if function is not None:
            for item in function.iterdir():
                if item.suffix == ".py":
                    shutil.copy2(item, task_root / item.name)
        skipped = {name.lower() for name in skip}
        for name in packages:
            if name.lower() in skipped:
                continue
            dist = metadata.distribution(name)
            for file in dist.files or []:
                if "__pycache__" in file.parts or file.suffix == ".pyc" or str(file).startswith(".."):
                    continue
                source = Path(str(dist.locate_file(file)))
                if source.is_file():
                    target = layer / file
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
        for name, source in extra.items():
            target = layer / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, target)
        if precompiled:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", "-j", "0", str(task_root), str(layer)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        return cls(root=root, task_root=task_root, layer=layer, precompiled=precompiled)

    def with_function(self, function: Path | None) -> Package:
        """A copy of this package (its layer, compiled or not, and whatever sits next to it in <opt>) with
        `function` as the task root: compiling a layer takes seconds, copying it a fraction of that."""
        root = Path(tempfile.mkdtemp(prefix="medic-bench-"))
        shutil.copytree(self.root / "opt", root / "opt", symlinks=True)  # copy2: the bytecode stays valid
        task_root = root / "task"
        task_root.mkdir()
        for item in function.iterdir() if function is not None else ():
            if item.suffix == ".py":
                shutil.copy2(item, task_root / item.name)
        if self.precompiled:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(task_root)], check=True, stdout=subprocess.DEVNULL
            )
        return Package(root=root, task_root=task_root, layer=root / "opt" / "python", precompiled=self.precompiled)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Answer:
    wall_s: float  # seen by the parent: spawn → first answer (cold), or event written → answer (warm)
    init_s: float
    handle_s: float
    maxrss_kb: int
    modules: int
    result: Any


@dataclass
class Environment:
    """One execution environment (a child process): `invoke()` the first time is the cold start."""

    init: str
    handler: str
    env: dict[str, str]
    cwd: Path | None = None
    timeout_s: float = 120.0
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="medic-bench-log-")[1]))
    _process: subprocess.Popen[str] | None = None
    _read_fd: int = -1
    _buffer: bytes = b""

    def invoke(self, event: Any) -> Answer:
        line = json.dumps(event) + "\n"
        started = time.perf_counter()
        if self._process is None:
            self._spawn(line)
        else:
            assert self._process.stdin is not None
            self._process.stdin.write(line)
            self._process.stdin.flush()
        answer = self._read(started)
        return answer

    def _spawn(self, first_line: str) -> None:
        read_fd, write_fd = os.pipe()
        code = BOOTSTRAP.format(init=textwrap.dedent(self.init).strip(), handler=self.handler)
        env = {**BASE_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env, "BENCH_FD": str(write_fd)}
        log = self.log_path.open("a")
        self._process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=env,
            cwd=self.cwd,
            pass_fds=(write_fd,),
            text=True,
        )
        log.close()
        os.close(write_fd)
        self._read_fd = read_fd
        assert self._process.stdin is not None
        self._process.stdin.write(first_line)
        self._process.stdin.flush()

    def _read(self, started: float) -> Answer:
        deadline = started + self.timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.perf_counter()
            ready, _, _ = select.select([self._read_fd], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError(f"no answer in {self.timeout_s}s; log: {self.tail()}")
            chunk = os.read(self._read_fd, 65536)
            if not chunk:
                raise RuntimeError(f"the environment exited; log: {self.tail()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        wall = time.perf_counter() - started
        data = json.loads(line)
        return Answer(wall, data["init_s"], data["handle_s"], data["maxrss_kb"], data["modules"], data["result"])

    def tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._read_fd >= 0:
            os.close(self._read_fd)
            self._read_fd = -1
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def spawn_to_exit(code: str, env: dict[str, str] | None = None) -> float:
    """Wall time of `python -c code` from spawn to exit (the `python -c pass` floor)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**BASE_ENV, "PATH": os.environ.get("PATH", ""), **(env or {})},
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


# -- a fake Slack Web API on 127.0.0.1 ----------------------------------------------------------------


class FakeSlack:
    """Answers chat.postMessage / chat.update like Slack's Web API (ok + a ts); counts the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        lock = threading.Lock()
        counter = iter(range(1, 10**9))
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                method = self.path.rstrip("/").rsplit("/", 1)[-1]
                with lock:
                    calls.append(method)
                    ts = f"{int(time.time())}.{next(counter):06d}"
                body = json.dumps({"ok": True, "channel": "C0MEDICOPS", "ts": ts}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/api/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
