"""REPORT lines: a bounded sample of the modelled invocations, as Lambda writes them to CloudWatch Logs.

* The sample: `report_lines` invocations per function over the window, drawn evenly over all its invocations (every
  class keeps its share: cold, warm, provisioned). Each environment writes its own log stream; a cold line opens
  one, so when the cold lines would need more than `report_streams` streams the sample shrinks, keeping its
  proportions. Warm lines go to a few streams per version, provisioned ones to streams of their own.
* Text format (Lambda developer guide, "Lambda function logs"): ``REPORT RequestId: <id>\\tDuration: 12.34 ms\\t
  Billed Duration: 13 ms\\tMemory Size: 512 MB\\tMax Memory Used: 80 MB`` and ``\\tInit Duration: 250.10 ms`` on a
  cold on-demand start only (a provisioned environment was initialized ahead: its first line has none); a timed out
  invocation adds ``\\tStatus: timeout``.
* JSON format ("Configuring JSON and plain text log formats"; the Telemetry API's platform.report): ``{"time",
  "type": "platform.report", "record": {"requestId", "metrics": {"durationMs", "billedDurationMs", "memorySizeMB",
  "maxMemoryUsedMB"[, "initDurationMs"]}, "status": "success"|"timeout"}}``.
* Log streams ("Configuring CloudWatch log groups"): ``YYYY/MM/DD/[<version>]<environment id>`` in the function's
  own group; in a custom group, ``YYYY/MM/DD/<function name>[<version>]<environment id>``.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from medic_tools.world.workload.config import AccountConfig, FunctionConfig
from medic_tools.world.workload.physics import billed_ms
from medic_tools.world.workload.trace import Trace, WorkKey

WARM_STREAMS_PER_VERSION = 4


@dataclass(frozen=True)
class ReportLine:
    log_group: str
    stream: str
    timestamp_ms: int
    message: str


def _picks(items: list[tuple[int, str | None, str, WorkKey, int]], wanted: int, rng: random.Random) -> list[int]:
    """Systematic sampling: indexes of `wanted` invocations spread evenly over the items' counts."""
    total = sum(item[4] for item in items)
    if total == 0 or wanted <= 0:
        return []
    step = total / min(wanted, total)
    position = rng.random() * step
    picks, seen = [], 0
    for index, item in enumerate(items):
        seen += item[4]
        while position < seen:
            picks.append(index)
            position += step
    return picks


def report_lines(
    trace: Trace, config: AccountConfig, start: datetime, first: int, last: int, seed: int = 0
) -> list[ReportLine]:
    """The sampled REPORT lines of minutes [first, last), every function with a workload."""
    lines: list[ReportLine] = []
    for function in config.functions:
        if function.workload is None or function.workload.report_lines == 0:
            continue
        items = [
            (minute, key[1], key[2], work, count)
            for minute in range(first, last)
            for key, cell in sorted(trace.cells.get(minute, {}).items(), key=lambda kv: (kv[0][1] or "", kv[0][2]))
            if key[0] == function.name
            for work, count in cell.durations.items()
        ]
        rng = random.Random(f"reports:{seed}:{function.name}:{first}")  # noqa: S311 - seeded, not secrets
        wanted = round(function.workload.report_lines * (last - first) / max(1, config.window_minutes))
        picks = _picks(items, wanted, rng)
        cold = sum(1 for index in picks if items[index][3][0] == "cold")
        room = config.model.report_streams - WARM_STREAMS_PER_VERSION * 2
        if cold > room > 0:
            picks = _picks(items, math.floor(len(picks) * room / cold), rng)
        lines.extend(_write(function, [items[index] for index in picks], start, rng))
    return lines


def _write(
    function: FunctionConfig,
    picked: list[tuple[int, str | None, str, WorkKey, int]],
    start: datetime,
    rng: random.Random,
) -> list[ReportLine]:
    workload = function.workload
    assert workload is not None
    sigma = workload.duration.noise
    timeout_ms = function.timeout_s * 1000.0
    used = workload.duration.memory_used_mb or max(1, function.memory_mb // 2)
    warm_streams: dict[tuple[str, str], list[str]] = {}
    lines = []
    for minute, _, version, work, _ in picked:
        moment = start + timedelta(seconds=minute * 60 + rng.random() * 60)
        kind = work[0]
        group = "pc" if kind.startswith("pc") else "od"
        if kind == "cold":
            stream = _stream_name(function, version, moment, rng)
        else:
            streams = warm_streams.setdefault((group, version), [])
            if len(streams) < WARM_STREAMS_PER_VERSION:
                streams.append(_stream_name(function, version, start + timedelta(seconds=minute * 60), rng))
            stream = rng.choice(streams)
        median = work[1] + work[2] + work[3] + work[4]
        duration = min(median * math.exp(rng.gauss(0, sigma)) if sigma else median, timeout_ms)
        init = workload.duration.init_ms * math.exp(rng.gauss(0, sigma)) if kind == "cold" else None
        memory = function.memory_of(version)
        used_now = min(memory, max(1, round(used * (1 + rng.uniform(-0.03, 0.03)))))
        timed_out = duration >= timeout_ms
        request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        message = _message(function.logging.format, moment, request_id, duration, init, memory, used_now, timed_out)
        lines.append(ReportLine(function.log_group, stream, int(moment.timestamp() * 1000), message))
    return lines


def _stream_name(function: FunctionConfig, version: str, moment: datetime, rng: random.Random) -> str:
    environment = uuid.UUID(int=rng.getrandbits(128)).hex
    day = moment.astimezone(UTC).strftime("%Y/%m/%d")
    owner = function.name if function.logging.log_group else ""
    return f"{day}/{owner}[{version}]{environment}"


def _message(
    log_format: str,
    moment: datetime,
    request_id: str,
    duration: float,
    init: float | None,
    memory: int,
    used: int,
    timed_out: bool,
) -> str:
    billed = billed_ms(duration, init)
    if log_format == "JSON":
        metrics: dict[str, float | int] = {
            "durationMs": round(duration, 3),
            "billedDurationMs": billed,
            "memorySizeMB": memory,
            "maxMemoryUsedMB": used,
        }
        if init is not None:
            metrics["initDurationMs"] = round(init, 3)
        time = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        record = {"requestId": request_id, "metrics": metrics, "status": "timeout" if timed_out else "success"}
        return json.dumps({"time": time, "type": "platform.report", "record": record})
    text = (
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {memory} MB\tMax Memory Used: {used} MB"
    )
    if init is not None:
        text += f"\tInit Duration: {init:.2f} ms"
    if timed_out:
        text += "\tStatus: timeout"
    return text
