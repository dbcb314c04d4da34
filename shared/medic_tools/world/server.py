"""The embedded AWS: moto's server on a free local port, with Medic's extensions installed."""

from __future__ import annotations

import logging
import urllib.request
from types import TracebackType
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from medic_tools.world import moto_ext

DUMMY_CREDENTIAL = "testing"


class EmbeddedAWS:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port) serving every AWS API Medic uses, extensions included.

    Use it as a context manager (or call start() and stop()). `endpoint_url` is "http://127.0.0.1:PORT".
    Clients made with `client()` carry dummy credentials; callers that build their own clients (Medic's code under
    test does) must point them at `endpoint_url` and set credentials themselves, e.g. AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY to "testing", AWS_DEFAULT_REGION and AWS_ENDPOINT_URL. The "testing" access key maps to
    moto's account 123456789012. The server runs in this process, so the knobs in `medic_tools.world.moto_ext` and the
    evaluation in `medic_tools.world.alarms` act on the state it serves.
    """

    def __init__(self) -> None:
        self._server: ThreadedMotoServer | None = None
        self.endpoint_url = ""

    def start(self) -> EmbeddedAWS:
        """Install the extensions and start serving; returns self."""
        if self._server is not None:
            return self
        moto_ext.install()
        _remember_backends_by_host()
        # Werkzeug logs every request at INFO; the world is a tool, its traffic is not news.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        """Forget every resource (POST /moto-api/reset) and restore the world knobs' defaults."""
        if self._server is None:
            raise RuntimeError("the embedded AWS is not running")
        # The URL is always http://127.0.0.1:<port>, never user input.
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
        moto_ext.reset_knobs()

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str, region: str = moto_ext.DEFAULT_REGION) -> Any:
        """A boto3 client for `service` on this endpoint, with dummy credentials (for tests and world building)."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=DUMMY_CREDENTIAL,
            aws_secret_access_key=DUMMY_CREDENTIAL,
        )

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


#: The moto service (backend) serving each host name the world was asked for.
_BACKENDS_BY_HOST: dict[str, Any] = {}
_remembering = False


def _remember_backends_by_host() -> None:
    """moto's server finds the service a request is for from its host: on every request it lists moto's package
    folder (a directory listing and a stat per service, some 150), then tries the services' URL patterns: a quarter
    of the time of a simple call (3.6 → 2.6 ms a ListQueues). The answer depends on the host alone: it is remembered
    (idempotent; an unknown host is looked up, and reported by moto, each time)."""
    global _remembering  # noqa: PLW0603 - a process-wide, once-only patch, like moto_ext.install
    if _remembering:
        return
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    look_up = DomainDispatcherApplication.get_backend_for_host

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        backend = _BACKENDS_BY_HOST.get(host) if host is not None else None
        if backend is None:
            backend = look_up(self, host)
            if backend is not None and host is not None:
                _BACKENDS_BY_HOST[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    _remembering = True
