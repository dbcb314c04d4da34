"""AWS client providers: lazy, injectable, one retry policy, an optional endpoint override.

boto3 is imported on first use, not at import, and each client is built once per execution
environment. Without an explicit `endpoint_url`, botocore's own configuration applies
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), so Medic never needs to know where AWS is.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

#: Bounded retries with backoff for throttling and 5xx (botocore's "standard" mode), short timeouts:
#: a remediation bot runs while AWS is under stress and must fail clearly rather than hang.
RETRY_MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 15


def retry_config() -> Config:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": RETRY_MAX_ATTEMPTS},  # attempts in all, first included
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=16,
    )


class AwsClients:
    """Builds and caches one client per service.

    >>> clients = AwsClients(region="us-east-1")   # nothing is imported or created yet
    >>> clients.region
    'us-east-1'
    """

    def __init__(
        self,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        config: Config | None = None,
    ) -> None:
        self._session = session
        self.region = region
        self.endpoint_url = endpoint_url
        self._config = config
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The cached client for `service` (thread-safe; fact collection runs calls concurrently)."""
        cached = self._clients.get(service)
        if cached is not None:
            return cached
        with self._lock:
            if service not in self._clients:
                session = self._session_or_default()
                kwargs: dict[str, Any] = {"config": self._config or retry_config()}
                if self.region:
                    kwargs["region_name"] = self.region
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._clients[service] = cast(Any, session).client(service, **kwargs)
            return self._clients[service]

    def assume(self, role_arn: str, session_name: str, source_identity: str) -> tuple[AwsClients, dict[str, str]]:
        """Clients acting as `role_arn` in a session named `session_name` with `source_identity` (both visible in
        CloudTrail), and what to log about the session (never the secret). Names are cut to IAM's charset/length."""
        import boto3

        name = _iam_name(session_name, 64)
        identity = _iam_name(source_identity, 64)
        response = self.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=name, SourceIdentity=identity, DurationSeconds=900
        )
        credentials = response["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.region,
        )
        assumed = AwsClients(session=session, region=self.region, endpoint_url=self.endpoint_url, config=self._config)
        record = {
            "role_arn": role_arn,
            "session_name": name,
            "source_identity": identity,
            "assumed_role_arn": response["AssumedRoleUser"]["Arn"],
            "access_key_id": credentials["AccessKeyId"],
        }
        return assumed, record

    def with_config(self, config: Config) -> AwsClients:
        """Clients on the same session, region and endpoint with another botocore config (e.g. no retries for a
        call that is only nice to have)."""
        return AwsClients(session=self._session_or_default(), region=self.region, endpoint_url=self.endpoint_url,
                          config=config)  # fmt: skip

    def _session_or_default(self) -> boto3.Session:
        if self._session is None:
            import boto3

            self._session = boto3.Session()
        return self._session

    @property
    def lambda_(self) -> LambdaClient:
        return self.client("lambda")  # type: ignore[no-any-return]

    @property
    def autoscaling(self) -> ApplicationAutoScalingClient:
        return self.client("application-autoscaling")  # type: ignore[no-any-return]

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return self.client("cloudwatch")  # type: ignore[no-any-return]

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self.client("dynamodb")  # type: ignore[no-any-return]

    @property
    def sqs(self) -> SQSClient:
        return self.client("sqs")  # type: ignore[no-any-return]

    @property
    def secrets(self) -> SecretsManagerClient:
        return self.client("secretsmanager")  # type: ignore[no-any-return]


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, else the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def request_id(response: dict[str, Any]) -> str:
    """The request id AWS gave a call, for the audit trail."""
    return str(response.get("ResponseMetadata", {}).get("RequestId", ""))


def _iam_name(text: str, limit: int) -> str:
    """`text` within IAM's session-name charset ([\\w+=,.@-]) and length, at least 2 characters."""
    cleaned = re.sub(r"[^\w+=,.@-]", "-", text)[:limit]
    return cleaned if len(cleaned) >= 2 else (cleaned + "--")[:2]
