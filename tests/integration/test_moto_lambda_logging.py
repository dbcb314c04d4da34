"""Lambda LoggingConfig in the embedded world, over HTTP with boto3: stored, defaulted, validated, per version."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from medic_tools.world.moto_lambda_logging import log_stream_name
from medic_tools.world.server import DUMMY_CREDENTIAL, EmbeddedAWS

DEFAULT = {"LogFormat": "Text", "LogGroup": "/aws/lambda/checkout"}
JSON_DEFAULT = {
    "LogFormat": "JSON",
    "LogGroup": "/aws/lambda/checkout",
    "ApplicationLogLevel": "INFO",
    "SystemLogLevel": "INFO",
}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def lambda_client(aws: EmbeddedAWS, *, validated: bool = True) -> Any:
    """A Lambda client; unvalidated, it sends what botocore would refuse client-side, to reach the server."""
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=aws.endpoint_url,
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        config=Config(parameter_validation=validated),
    )


def create(aws: EmbeddedAWS, name: str = "checkout", client: Any = None, **kwargs: Any) -> dict[str, Any]:
    role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    created: dict[str, Any] = (client or aws.client("lambda")).create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": _zip()}, **kwargs
    )
    return created


def logging_of(aws: EmbeddedAWS, name: str = "checkout", qualifier: str | None = None) -> dict[str, str]:
    extra = {"Qualifier": qualifier} if qualifier else {}
    config: dict[str, str] = aws.client("lambda").get_function_configuration(FunctionName=name, **extra)[
        "LoggingConfig"
    ]
    return config


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_a_function_gets_lambda_s_defaults(aws: EmbeddedAWS) -> None:
    created = create(aws)

    assert created["LoggingConfig"] == DEFAULT
    assert logging_of(aws) == DEFAULT
    assert aws.client("lambda").get_function(FunctionName="checkout")["Configuration"]["LoggingConfig"] == DEFAULT
    assert aws.client("lambda").list_functions()["Functions"][0]["LoggingConfig"] == DEFAULT


def test_json_gets_info_levels_unless_given(aws: EmbeddedAWS) -> None:
    create(aws, LoggingConfig={"LogFormat": "JSON"})
    create(
        aws,
        "orders",
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "ERROR", "SystemLogLevel": "WARN", "LogGroup": "/x"},
    )

    assert logging_of(aws) == JSON_DEFAULT
    assert logging_of(aws, "orders") == {
        "LogFormat": "JSON",
        "LogGroup": "/x",
        "ApplicationLogLevel": "ERROR",
        "SystemLogLevel": "WARN",
    }


def test_an_update_changes_the_members_it_names(aws: EmbeddedAWS) -> None:
    create(aws, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"})
    lam = aws.client("lambda")

    updated = lam.update_function_configuration(FunctionName="checkout", LoggingConfig={"LogGroup": "/shared/app"})
    assert updated["LoggingConfig"] == JSON_DEFAULT | {"LogGroup": "/shared/app", "ApplicationLogLevel": "DEBUG"}
    lam.update_function_configuration(FunctionName="checkout", LoggingConfig={"LogFormat": "Text"})
    assert logging_of(aws) == {"LogFormat": "Text", "LogGroup": "/shared/app"}
    lam.update_function_configuration(FunctionName="checkout", MemorySize=512)
    assert logging_of(aws) == {"LogFormat": "Text", "LogGroup": "/shared/app"}


def test_a_published_version_keeps_its_configuration(aws: EmbeddedAWS) -> None:
    create(aws, LoggingConfig={"LogFormat": "JSON"})
    lam = aws.client("lambda")
    assert lam.publish_version(FunctionName="checkout")["LoggingConfig"] == JSON_DEFAULT
    lam.create_alias(FunctionName="checkout", Name="live", FunctionVersion="1")

    lam.update_function_configuration(FunctionName="checkout", LoggingConfig={"LogFormat": "Text", "LogGroup": "/a"})
    lam.publish_version(FunctionName="checkout")

    assert logging_of(aws, qualifier="1") == JSON_DEFAULT
    assert logging_of(aws, qualifier="live") == JSON_DEFAULT
    assert logging_of(aws, qualifier="2") == {"LogFormat": "Text", "LogGroup": "/a"}
    assert logging_of(aws) == {"LogFormat": "Text", "LogGroup": "/a"}
    versions = lam.list_versions_by_function(FunctionName="checkout")["Versions"]
    assert [v["LoggingConfig"]["LogFormat"] for v in versions] == ["Text", "JSON", "Text"]


@pytest.mark.parametrize(
    ("logging", "message"),
    [
        (
            {"LogFormat": "XML"},
            "1 validation error detected: Value 'XML' at 'loggingConfig.logFormat' failed to satisfy constraint: "
            "Member must satisfy enum value set: [JSON, Text]",
        ),
        (
            {"LogFormat": "JSON", "ApplicationLogLevel": "VERBOSE"},
            "Value 'VERBOSE' at 'loggingConfig.applicationLogLevel' failed to satisfy constraint: "
            "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]",
        ),
        (
            {"LogFormat": "JSON", "SystemLogLevel": "TRACE"},
            "Member must satisfy enum value set: [DEBUG, INFO, WARN]",
        ),
        (
            {"LogGroup": "my group"},
            r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
        ),
        ({"LogGroup": "g" * 513}, "Member must have length less than or equal to 512"),
        ({"LogGroup": ""}, "Member must have length greater than or equal to 1"),
        ({"LogFormat": "XML", "LogGroup": "a b"}, "2 validation errors detected: "),
    ],
)
def test_a_value_outside_the_model_is_a_validation_error(
    aws: EmbeddedAWS, logging: dict[str, str], message: str
) -> None:
    unvalidated = lambda_client(aws, validated=False)

    code, status, text = error_of(lambda: create(aws, client=unvalidated, LoggingConfig=logging))

    assert (code, status) == ("ValidationException", 400)
    assert message in text
    assert aws.client("lambda").list_functions()["Functions"] == []


@pytest.mark.parametrize(
    "logging",
    [{"ApplicationLogLevel": "DEBUG"}, {"LogFormat": "Text", "SystemLogLevel": "WARN"}],
)
def test_log_levels_need_the_json_format(aws: EmbeddedAWS, logging: dict[str, str]) -> None:
    code, status, text = error_of(lambda: create(aws, LoggingConfig=logging))

    assert (code, status) == ("InvalidParameterValueException", 400)
    assert text.startswith('LogLevel is not supported when LogFormat is set to "Text".')


def test_a_refused_update_changes_nothing(aws: EmbeddedAWS) -> None:
    create(aws)
    lam = aws.client("lambda")

    code, _, _ = error_of(
        lambda: lam.update_function_configuration(
            FunctionName="checkout", MemorySize=2048, LoggingConfig={"SystemLogLevel": "WARN"}
        )
    )

    configuration = lam.get_function_configuration(FunctionName="checkout")
    assert code == "InvalidParameterValueException"
    assert (configuration["MemorySize"], configuration["LoggingConfig"]) == (128, DEFAULT)


def test_log_stream_names_carry_the_function_in_a_custom_group() -> None:
    day = date(2026, 1, 5)

    assert log_stream_name("checkout", "$LATEST", "a1b2", day, log_group="/aws/lambda/checkout") == (
        "2026/01/05/[$LATEST]a1b2"
    )
    assert log_stream_name("checkout", "7", "a1b2", day, log_group="/shared/app") == "2026/01/05/checkout[7]a1b2"
