"""Counting AWS API calls at the HTTP endpoint: every request moto's server answers, whoever sent it.

The embedded AWS (moto's ThreadedMotoServer) runs in the bench process. `install()` wraps moto's WSGI
dispatcher class (`DomainDispatcherApplication.__call__`) so that each request is recorded with its
service (from the SigV4 credential scope), its operation (X-Amz-Target, the RPC-v2 path, the query
protocol's `Action`, or the REST route matched against botocore's service model), the access key that
signed it (one per client session: the assumed-role session of the executor has its own), the time
the server spent on it, for `GetMetricData` how many metric queries it carried, and a fingerprint of the
request (method, path, query string and body: two identical requests have the same fingerprint, which
is how repeated identical reads are found).

Counting at the endpoint, rather than with a botocore event hook, sees the calls of the child processes
(cold starts run in fresh interpreters) and of clients Medic builds itself (the per-plan assumed-role
session): nothing in Medic or c7n is touched. The bench process does its own setup calls outside the
measured windows.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs

#: SigV4 signing names → the service names people know.
SERVICE_NAMES = {"monitoring": "cloudwatch", "tagging": "resourcegroupstaggingapi", "servicequotas": "service-quotas"}
_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Call:
    """One AWS API request as the endpoint saw it."""

    service: str
    operation: str
    access_key: str
    server_s: float
    metric_queries: int = 0
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"

    @property
    def is_read(self) -> bool:
        return self.operation.startswith(READ_PREFIXES)


#: Operations that only read (by AWS's naming convention).
READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "Filter", "Search", "Lookup")
#: Reads that are repeated by design: polling for a result (Logs Insights).
POLLING = frozenset({"logs:GetQueryResults"})


@dataclass(eq=False)  # compared by identity: nested windows may hold equal calls
class Window:
    """The calls recorded between entering and leaving `Counter.window()` (windows may nest)."""

    calls: list[Call] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.calls)

    @property
    def metric_queries(self) -> int:
        return sum(call.metric_queries for call in self.calls)

    @property
    def metric_requests(self) -> int:
        return sum(1 for call in self.calls if call.operation in ("GetMetricData", "GetMetricStatistics"))

    @property
    def server_s(self) -> float:
        return sum(call.server_s for call in self.calls)

    def by_operation(self) -> Counter[str]:
        return Counter(call.name for call in self.calls)

    def by_service(self) -> Counter[str]:
        return Counter(call.service for call in self.calls)

    def repeated_reads(self) -> Counter[str]:
        """Read calls made more than once with the very same request: operation → extra (redundant) calls.
        Polling (POLLING) is left out: asking again for a query's result is the protocol."""
        seen: Counter[tuple[str, str]] = Counter(
            (call.name, call.fingerprint) for call in self.calls if call.is_read and call.name not in POLLING
        )
        repeated: Counter[str] = Counter()
        for (name, _), count in seen.items():
            if count > 1:
                repeated[name] += count - 1
        return repeated

    def polls(self) -> int:
        return sum(1 for call in self.calls if call.name in POLLING)

    def clients(self) -> list[tuple[str, str]]:
        """(access key, service) pairs in first-use order: one per boto3 client that made a call."""
        seen: dict[tuple[str, str], None] = {}
        for call in self.calls:
            seen.setdefault((call.access_key, call.service), None)
        return list(seen)


class EndpointCounter:
    """Process-wide recorder of moto's requests (install once, before the server starts serving)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: list[Window] = []
        self.total = 0

    def record(self, call: Call) -> None:
        with self._lock:
            self.total += 1
            for window in self._windows:
                window.calls.append(call)

    @contextmanager
    def window(self) -> Iterator[Window]:
        window = Window()
        with self._lock:
            self._windows.append(window)
        try:
            yield window
        finally:
            with self._lock:
                self._windows.remove(window)


COUNTER = EndpointCounter()
_installed = False


def install() -> EndpointCounter:
    """Wrap moto's dispatcher (idempotent); returns the process-wide counter."""
    global _installed  # noqa: PLW0603 - one wrapper per process
    if _installed:
        return COUNTER
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return original(self, environ, start_response)
        started = time.perf_counter()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            return original(self, environ, start_response)
        finally:
            COUNTER.record(_classify(environ, path, body, time.perf_counter() - started))

    DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign]
    for method in ("GET", "PUT", "POST", "DELETE"):  # Lambda's REST routes, built now rather than in a counted call
        _rest_routes("lambda", method)
    _installed = True
    return COUNTER


def _classify(environ: dict[str, Any], path: str, body: bytes, server_s: float) -> Call:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    key, signing = match.groups() if match else ("anonymous", "unknown")
    service = SERVICE_NAMES.get(signing, signing)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    content_type = environ.get("CONTENT_TYPE", "")
    payload: Any = None
    if target:
        operation = target.rsplit(".", 1)[-1]
        if operation == "GetMetricData":
            payload = json.loads(body or b"{}")
    elif "/operation/" in path:  # smithy RPC v2 (CBOR): CloudWatch, the tagging API
        operation = path.rsplit("/operation/", 1)[1]
        if operation == "GetMetricData":
            payload = _cbor(body)
    elif content_type.startswith("application/x-www-form-urlencoded") and b"Action=" in body:
        form = parse_qs(body.decode("utf-8", "replace"))
        operation = form.get("Action", ["?"])[0]
        if operation == "GetMetricData":
            payload = {"MetricDataQueries": [k for k in form if re.fullmatch(r"MetricDataQueries\.member\.\d+\.Id", k)]}
    else:
        operation = _rest_operation(
            signing, environ.get("REQUEST_METHOD", "GET"), path, environ.get("QUERY_STRING", "")
        )
    queries = len(payload.get("MetricDataQueries", [])) if isinstance(payload, dict) else 0
    digest = hashlib.sha1(usedforsecurity=False)
    for part in (environ.get("REQUEST_METHOD", ""), path, environ.get("QUERY_STRING", ""), target):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return Call(
        service=service,
        operation=operation,
        access_key=key,
        server_s=server_s,
        metric_queries=queries,
        fingerprint=digest.hexdigest(),
    )


def _cbor(body: bytes) -> Any:
    from botocore.parsers import RpcV2CBORParser

    parser = RpcV2CBORParser()
    return parser.parse_data_item(parser.get_peekable_stream_from_bytes(body)) if body else {}


def _rest_operation(signing: str, method: str, path: str, query: str = "") -> str:
    keys = set(parse_qs(query, keep_blank_values=True))
    for pattern, required, name in _rest_routes(signing, method):
        if required <= keys and pattern.fullmatch(path):
            return name
    return f"{method} {path}"


@cache
def _rest_routes(signing: str, method: str) -> list[tuple[re.Pattern[str], frozenset[str], str]]:
    """The REST operations of a service (by signing name) for one HTTP method, most specific route first. A
    route's literal query keys (`?List=ALL`) are required: ListProvisionedConcurrencyConfigs and
    GetProvisionedConcurrencyConfig share their path."""
    import botocore.session

    session = botocore.session.get_session()
    # The service named like its signing name first: loading every model to find it takes seconds, inside the
    # request being counted.
    guess = SERVICE_NAMES.get(signing, signing)
    available = session.get_available_services()
    for service in ([guess] if guess in available else []) + available:
        model = session.get_service_model(service)
        if model.signing_name != signing or model.protocol not in ("rest-json", "rest-xml"):
            continue
        routes: list[tuple[int, int, re.Pattern[str], frozenset[str], str]] = []
        for name in model.operation_names:
            http = model.operation_model(name).http
            if http.get("method") != method:
                continue
            uri, _, literal_query = http["requestUri"].partition("?")
            required = frozenset(parse_qs(literal_query, keep_blank_values=True))
            regex = re.sub(r"\\{[^}]+\\\+\\}", ".+", re.escape(uri))
            regex = re.sub(r"\\{[^}]+\\}", "[^/]+", regex)
            literal = len(re.sub(r"\{[^}]+\}", "", uri))
            routes.append((len(required), literal, re.compile(regex.rstrip("/") + "/?"), required, name))
        ordered = sorted(routes, key=lambda r: (-r[0], -r[1]))
        return [(pattern, required, name) for _, _, pattern, required, name in ordered]
    return []
