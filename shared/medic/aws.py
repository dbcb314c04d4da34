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
    from datetime import datetime

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
#: A cached read-only session in a member account is renewed when fewer seconds than this are left (of 900).
READER_REFRESH_S = 300


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
        self._readers: dict[str, tuple[AwsClients, datetime]] = {}
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

    def assume(
        self, role_arn: str, session_name: str, source_identity: str | None = None
    ) -> tuple[AwsClients, dict[str, str]]:
        """Clients acting as `role_arn` in a session named `session_name` (with `source_identity`, when given: both
        visible in CloudTrail), and what to log about the session (never the secret). Names are cut to IAM's
        charset/length. Called on assumed clients, it chains roles (the source identity carries over)."""
        import boto3

        name = _iam_name(session_name, 64)
        request: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": name, "DurationSeconds": 900}
        if source_identity is not None:
            request["SourceIdentity"] = _iam_name(source_identity, 64)
        response = self.client("sts").assume_role(**request)
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
            "assumed_role_arn": response["AssumedRoleUser"]["Arn"],
            "access_key_id": credentials["AccessKeyId"],
            "expires_at": credentials["Expiration"].isoformat(),
        }
        if source_identity is not None:
            record["source_identity"] = request["SourceIdentity"]
        return assumed, record

    def reader(self, role_arn: str, session_name: str) -> AwsClients:
        """Clients acting as `role_arn` (a read-only role in another account), assumed once and kept while the
        credentials have more than `READER_REFRESH_S` left: triage and the verifier read a member account at
        every alarm and every run, and one AssumeRole per call would add its latency to each."""
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        cached = self._readers.get(role_arn)
        if cached is not None and (cached[1] - now).total_seconds() > READER_REFRESH_S:
            return cached[0]
        with self._lock:
            cached = self._readers.get(role_arn)
            if cached is None or (cached[1] - now).total_seconds() <= READER_REFRESH_S:
                clients, record = self.assume(role_arn, session_name)
                cached = (clients, datetime.fromisoformat(record["expires_at"]))
                self._readers[role_arn] = cached
            return cached[0]

    def with_config(self, config: Config) -> AwsClients:
        """Clients on the same session, region and endpoint with another botocore config (e.g. no retries for a
        call that is only nice to have)."""
        return AwsClients(
            session=self._session_or_default(), region=self.region, endpoint_url=self.endpoint_url, config=config
        )

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


def member_role_arn(
    own_account: str,
    target_account: str,
    role_name: str,
    partition: str = "aws",
    *,
    setting: str = "MEDIC_MEMBER_ROLE_NAME",
) -> str | None:
    """The role Medic assumes in `target_account`, or None when the target is in Medic's own account (also when
    Medic's account is not configured: a single-account deployment acts as itself).

    Raises `ConfigError` (naming `setting`) for another account when no member role is configured: Medic never
    reads or changes the same-named function in its own account instead.

    >>> member_role_arn("111111111111", "222222222222", "medic-remediation")
    'arn:aws:iam::222222222222:role/medic-remediation'
    >>> member_role_arn("111111111111", "111111111111", "medic-remediation") is None
    True
    """
    if not own_account or not target_account or target_account == own_account:
        return None
    if not role_name:
        from medic.errors import ConfigError

        raise ConfigError(
            field=setting,
            source="environment",
            problem=f"the alarm is in account {target_account}, not Medic's ({own_account}), and no member role is "
            "configured (deploy templates/member-account.yaml there and set OrganizationId; docs/organizations.md)",
        )
    return f"arn:{partition}:iam::{target_account}:role/{role_name}"


def partition_of(arn: str) -> str:
    """The partition of an ARN (`aws`, `aws-cn`, `aws-us-gov`), `aws` when it is not an ARN."""
    parts = arn.split(":")
    return parts[1] if len(parts) > 2 and parts[0] == "arn" and parts[1] else "aws"


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
