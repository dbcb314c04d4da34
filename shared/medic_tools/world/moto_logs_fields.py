"""The fields Logs Insights discovers in a log event's message (CloudWatch Logs user guide, "Supported logs and
discovered fields"), beyond the system fields every event has (@message, @timestamp, @ingestionTime, @logStream,
@log, @ptr: see `medic_tools.world.moto_logs`).

* **Lambda's Text REPORT lines** (messages starting with "REPORT RequestId:"): @type = "REPORT", @requestId,
  @duration and @billedDuration (ms), @memorySize and @maxMemoryUsed (bytes: "Memory Size: 1024 MB" →
  1024000000, which is why AWS's sample queries divide by 1000/1000 to get MB, Lambda operator guide "Useful
  Insights queries") and @initDuration (ms, on cold-start lines only).
* **JSON events** (a message that is one JSON object), among them Lambda's JSON log format ("Configuring JSON and
  plain text log formats"): every member, "nested JSON fields using the dot notation" and arrays "flattened into a
  list of field names and values" (`record.metrics.durationMs`, `items.0.instanceId`); "a maximum of 200 log event
  fields" (the `parse` page: "no more than 200 log event fields"), the first 200 in document order; a member whose
  name starts with @ is shown with one more @ ("@example.com" → "@@example.com"). Numbers are numbers, true/false
  the strings "true"/"false", null no field. Lambda's JSON system records, e.g. `{"time": ..., "type":
  "platform.report", "record": {"requestId": ..., "metrics": {"durationMs": ..., "billedDurationMs": ...,
  "memorySizeMB": ..., "maxMemoryUsedMB": ..., "initDurationMs": ...}, "status": "success"}}` (Lambda Telemetry
  API, `platform.report`), give `type`, `record.requestId`, `record.metrics.durationMs` and so on, in Lambda's
  units (ms, MB).

  The Lambda-specific fields (@type, @duration, @initDuration, ...) are *not* discovered in JSON-format logs: AWS
  documents them for Lambda's log lines and nowhere for the JSON records, and the JSON format writes
  `platform.report` records instead of REPORT lines; a query over JSON-format logs reads the JSON fields. (Not
  modelled: the fields of "the first embedded JSON fragment" of a Text-format Lambda line.)
"""

from __future__ import annotations

import json
from typing import Any, Final

MAX_JSON_FIELDS: Final = 200
_BYTES_PER_MB: Final = 1_000_000
_REPORT_PREFIX: Final = "REPORT RequestId:"
#: REPORT line label → (discovered field, multiplier to Logs Insights' unit).
_REPORT_PARTS: Final = {
    "Duration": ("@duration", 1),
    "Billed Duration": ("@billedDuration", 1),
    "Memory Size": ("@memorySize", _BYTES_PER_MB),
    "Max Memory Used": ("@maxMemoryUsed", _BYTES_PER_MB),
    "Init Duration": ("@initDuration", 1),
}


def report_fields(message: str) -> dict[str, float | str]:
    """The fields Logs Insights discovers in a Lambda Text REPORT line ({} for any other message).

    >>> report_fields("REPORT RequestId: r1\\tDuration: 1.50 ms\\tMemory Size: 128 MB")
    {'@type': 'REPORT', '@requestId': 'r1', '@duration': 1.5, '@memorySize': 128000000.0}
    """
    if not message.startswith(_REPORT_PREFIX):
        return {}
    parts = message.rstrip().split("\t")
    fields: dict[str, float | str] = {"@type": "REPORT", "@requestId": parts[0].removeprefix(_REPORT_PREFIX).strip()}
    for part in parts[1:]:
        label, _, rest = part.partition(":")
        spec = _REPORT_PARTS.get(label.strip())
        if spec is None:
            continue
        name, multiplier = spec
        try:
            fields[name] = float(rest.split()[0]) * multiplier
        except (IndexError, ValueError):
            continue
    return fields


def _flatten(value: Any, name: str, fields: dict[str, float | str]) -> None:
    if len(fields) >= MAX_JSON_FIELDS:
        return
    if isinstance(value, dict):
        for key, member in value.items():
            _flatten(member, f"{name}.{key}" if name else ("@" + key if key.startswith("@") else key), fields)
    elif isinstance(value, list):
        for index, member in enumerate(value):
            _flatten(member, f"{name}.{index}", fields)
    elif isinstance(value, bool):
        fields[name] = "true" if value else "false"
    elif isinstance(value, int | float):
        fields[name] = float(value)
    elif isinstance(value, str):
        fields[name] = value


def json_fields(message: str) -> dict[str, float | str]:
    """The flattened fields of a message that is one JSON object ({} for any other message).

    >>> json_fields('{"type": "platform.report", "record": {"metrics": {"durationMs": 12.5}, "tags": ["a"]}}')
    {'type': 'platform.report', 'record.metrics.durationMs': 12.5, 'record.tags.0': 'a'}
    """
    text = message.strip()
    if not text.startswith("{"):
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    fields: dict[str, float | str] = {}
    if isinstance(document, dict):
        _flatten(document, "", fields)
    return fields


def discovered_fields(message: str) -> dict[str, float | str]:
    """The fields Logs Insights discovers in a message: a Lambda Text REPORT line's, or a JSON event's."""
    return report_fields(message) or json_fields(message)
