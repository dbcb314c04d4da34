"""What every test folder shares: one botocore data loader per test process.

Every `boto3.Session` gets a new botocore loader, which reads and parses botocore's JSON (endpoints.json, each
service's model, its endpoint rules) again: Medic's code builds a session per simulation and per assumed role, and
the tests build thousands, so a third of the suite's time went to `json.loads` of the same files. botocore already
shares one loader between every client of a session; here every session of the process shares it too (one per
AWS_DATA_PATH). What a client does is unchanged: the same files, parsed once, are what each session would read.
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.session
from botocore.loaders import Loader, create_loader

_LOADERS: dict[str | None, Loader] = {}
_LOCK = threading.Lock()


class _SearchPaths(list[str]):
    """A loader's search paths that ignore a path they have: each `boto3.Session` appends boto3's data folder to
    its loader's paths, once per session (a shared loader's list would grow by one per session)."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _shared_loader(data_path: str | None) -> Loader:
    with _LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = create_loader(data_path)
            loader._search_paths = _SearchPaths(loader.search_paths)
            _LOADERS[data_path] = loader
        return loader


def _register_data_loader(self: Any) -> None:
    """botocore's `Session._register_data_loader`, with the process's loader for the session's data path."""
    self._components.lazy_register_component(
        "data_loader", lambda: _shared_loader(self.get_config_variable("data_path"))
    )


botocore.session.Session._register_data_loader = _register_data_loader  # type: ignore[method-assign]
