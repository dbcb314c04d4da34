"""Structured JSON logs (structlog), configured once per process; bind the plan id on every line."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

_configured = False


def configure(level: str | None = None) -> None:
    """Idempotent. JSON lines on stderr (CloudWatch Logs in Lambda), level from MEDIC_LOG_LEVEL."""
    global _configured  # noqa: PLW0603 - process-wide logging setup, once per execution environment
    if _configured:
        return
    name = (level or os.environ.get("MEDIC_LOG_LEVEL") or "INFO").upper()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


class _Stderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured: a process that swaps its
    stderr (a CLI piped on, a test capturing output) keeps its log lines, and a stream closed since is never used."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def get_logger(**context: Any) -> Any:
    configure()
    return structlog.get_logger("medic").bind(**context)


def bind(**context: Any) -> None:
    """Bind context (plan id, alarm, function) for every log line of this invocation."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)
