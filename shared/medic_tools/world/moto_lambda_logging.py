"""Lambda `LoggingConfig` for moto 5.2.5, which ignores it: stored, validated, returned and kept per version.

`install()` (called from `moto_ext.install()`) patches moto's `LambdaFunction`, so CreateFunction,
UpdateFunctionConfiguration, GetFunction, GetFunctionConfiguration, ListFunctions, ListVersionsByFunction and
PublishVersion all carry it. What it follows (Lambda API reference, `LoggingConfig`, and the developer guide's
"Configuring JSON and plain text log formats", "Log-level filtering" and "Configuring CloudWatch log groups"):

* Members: LogFormat `JSON | Text`, ApplicationLogLevel `TRACE | DEBUG | INFO | WARN | ERROR | FATAL`, SystemLogLevel
  `DEBUG | INFO | WARN`, LogGroup (1 to 512 characters of `[\\.\\-_/#A-Za-z0-9]+`). A value outside its enum, length
  or pattern is a ValidationException ("1 validation error detected: Value 'XML' at 'loggingConfig.logFormat'
  failed to satisfy constraint: Member must satisfy enum value set: [JSON, Text]"), several are counted in one.
* Defaults, as GetFunctionConfiguration shows them: `{"LogFormat": "Text", "LogGroup": "/aws/lambda/<name>"}`; a
  JSON function also gets ApplicationLogLevel and SystemLogLevel `INFO` when none is given ("The default
  application log level for log filtering is INFO", "By default, Lambda sets the system log level to INFO").
* Log levels only with the JSON format ("To use log-level filtering, your function must be configured to use the
  JSON log format"): a level with the Text format is an InvalidParameterValueException, with the message AWS
  returns ("LogLevel is not supported when LogFormat is set to \\"Text\\". ...").
* UpdateFunctionConfiguration changes the members it names and keeps the others (our reading: the guide changes
  the log group alone with `--logging-config LogGroup=...`); levels stored for a JSON function are dropped when it
  changes to Text. It changes $LATEST only; a published version keeps the configuration it was published with, and
  an alias reports its version's.
* moto's own log writing for a function (`logs_group_name`) follows LogGroup.

`log_stream_name()` names the streams Lambda writes: `YYYY/MM/DD/[<version>]<environment id>` in the function's
default group, `YYYY/MM/DD/<function name>[<version>]<environment id>` in a custom one ("When you use a custom log
group for a Lambda function, the log streams Lambda creates include the function name and function version").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final

from moto.awslambda.models import LambdaFunction

from medic_tools.world import moto_ext

LOG_FORMATS: Final = ("JSON", "Text")
APPLICATION_LOG_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARN")
DEFAULT_LOG_LEVEL: Final = "INFO"
LOG_GROUP_PATTERN: Final = r"[\.\-_/#A-Za-z0-9]+"
LOG_GROUP_MAX_LENGTH: Final = 512
_LEVELS_NEED_JSON: Final = (
    'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or change the '
    'LogFormat to "Json" and try again.'
)
_ENUMS: Final = {
    "LogFormat": ("logFormat", LOG_FORMATS),
    "ApplicationLogLevel": ("applicationLogLevel", APPLICATION_LOG_LEVELS),
    "SystemLogLevel": ("systemLogLevel", SYSTEM_LOG_LEVELS),
}

_installed = False


@dataclass(frozen=True)
class LoggingConfig:
    """A function version's logging configuration, as GetFunctionConfiguration reports it."""

    log_format: str
    log_group: str
    application_log_level: str | None = None
    system_log_level: str | None = None

    @classmethod
    def default(cls, function_name: str) -> LoggingConfig:
        return cls(log_format="Text", log_group=f"/aws/lambda/{function_name}")

    def view(self) -> dict[str, str]:
        """The `LoggingConfig` member of a FunctionConfiguration."""
        view = {"LogFormat": self.log_format, "LogGroup": self.log_group}
        if self.application_log_level is not None:
            view["ApplicationLogLevel"] = self.application_log_level
        if self.system_log_level is not None:
            view["SystemLogLevel"] = self.system_log_level
        return view


def _violations(request: Mapping[str, Any]) -> list[str]:
    problems = []
    for member, (field, allowed) in _ENUMS.items():
        value = request.get(member)
        if value is not None and value not in allowed:
            problems.append(
                f"Value '{value}' at 'loggingConfig.{field}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(allowed)}]"
            )
    group = request.get("LogGroup")
    if group is not None:
        prefix = f"Value '{group}' at 'loggingConfig.logGroup' failed to satisfy constraint: "
        if not isinstance(group, str) or not group:
            problems.append(prefix + "Member must have length greater than or equal to 1")
        elif len(group) > LOG_GROUP_MAX_LENGTH:
            problems.append(prefix + f"Member must have length less than or equal to {LOG_GROUP_MAX_LENGTH}")
        elif re.fullmatch(LOG_GROUP_PATTERN, group) is None:
            problems.append(prefix + f"Member must satisfy regular expression pattern: {LOG_GROUP_PATTERN}")
    return problems


def resolve(request: Mapping[str, Any] | None, current: LoggingConfig) -> LoggingConfig:
    """The configuration after a request's `LoggingConfig` (None: unchanged), validated as Lambda validates it.

    >>> resolve({"LogFormat": "JSON"}, LoggingConfig.default("checkout")).view()
    {'LogFormat': 'JSON', 'LogGroup': '/aws/lambda/checkout', 'ApplicationLogLevel': 'INFO', 'SystemLogLevel': 'INFO'}
    """
    if request is None:
        return current
    if not isinstance(request, Mapping):
        raise moto_ext.ParameterValidation("1 validation error detected: loggingConfig must be a structure")
    problems = _violations(request)
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
        raise moto_ext.ParameterValidation(count + "; ".join(problems))
    log_format = request.get("LogFormat") or current.log_format
    levels_asked = request.get("ApplicationLogLevel") is not None or request.get("SystemLogLevel") is not None
    if log_format == "Text":
        if levels_asked:
            raise moto_ext.InvalidParameterValue(_LEVELS_NEED_JSON)
        return LoggingConfig(log_format="Text", log_group=request.get("LogGroup") or current.log_group)
    return replace(
        current,
        log_format=log_format,
        log_group=request.get("LogGroup") or current.log_group,
        application_log_level=(
            request.get("ApplicationLogLevel") or current.application_log_level or DEFAULT_LOG_LEVEL
        ),
        system_log_level=request.get("SystemLogLevel") or current.system_log_level or DEFAULT_LOG_LEVEL,
    )


def logging_config(function: LambdaFunction) -> LoggingConfig:
    """A function version's logging configuration (the default for one created before `install()`)."""
    config = function.__dict__.get("_medic_logging")
    return config if isinstance(config, LoggingConfig) else LoggingConfig.default(function.function_name)


def _set(function: LambdaFunction, config: LoggingConfig) -> None:
    function.__dict__["_medic_logging"] = config
    function.logs_group_name = config.log_group


def log_stream_name(function_name: str, version: str, environment_id: str, day: date, *, log_group: str) -> str:
    """The name of the log stream an execution environment of `function_name:version` writes to in `log_group`.

    >>> log_stream_name("checkout", "$LATEST", "8c2f", date(2026, 1, 5), log_group="/aws/lambda/checkout")
    '2026/01/05/[$LATEST]8c2f'
    >>> log_stream_name("checkout", "3", "8c2f", date(2026, 1, 5), log_group="/shared/app")
    '2026/01/05/checkout[3]8c2f'
    """
    custom = log_group != LoggingConfig.default(function_name).log_group
    return f"{day:%Y/%m/%d}/{function_name if custom else ''}[{version}]{environment_id}"


# ---------------------------------------------------------------------------------------------------------------
# Installation

_original_init = LambdaFunction.__init__
_original_get_configuration = LambdaFunction.get_configuration
_original_update_configuration = LambdaFunction.update_configuration


def _init(self: LambdaFunction, account_id: str, spec: dict[str, Any], region: str, version: str | int = 1) -> None:
    config = resolve(spec.get("LoggingConfig"), LoggingConfig.default(str(spec.get("FunctionName", ""))))
    _original_init(self, account_id, spec, region, version)
    _set(self, config)


def _get_configuration(self: LambdaFunction, on_create: bool = False) -> dict[str, Any]:
    configuration: dict[str, Any] = _original_get_configuration(self, on_create)
    configuration["LoggingConfig"] = logging_config(self).view()
    return configuration


def _update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
    config = resolve(config_updates.get("LoggingConfig"), logging_config(self))  # refused before anything changes
    _original_update_configuration(self, config_updates)
    _set(self, config)
    return dict(self.get_configuration())


def install() -> None:
    """Patch moto's Lambda functions in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with moto_ext._LOCK:
        if _installed:
            return
        LambdaFunction.__init__ = _init  # type: ignore[method-assign]
        LambdaFunction.get_configuration = _get_configuration  # type: ignore[method-assign]
        LambdaFunction.update_configuration = _update_configuration  # type: ignore[method-assign]
        _installed = True
