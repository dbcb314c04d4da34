"""What several of `medic`'s commands share: the exit statuses, `--stack NAME`, and the settings it names."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medic.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
#: What a shell reports for a command killed by SIGPIPE (128 + 13), as `yes | head -1` does for `yes`.
EXIT_BROKEN_PIPE = 141


def stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="the deployed Medic's stack: its outputs name the log's tables and the digest bucket (docs/deploy.md)",
    )


def settings(args: argparse.Namespace) -> Settings:
    """`medic control` and `medic log`'s settings: the environment's, with what `--stack NAME`'s outputs name filled
    in (`medic_tools.stack`: a `MEDIC_*` variable that names something else is refused). The environment the command
    used is kept on `args.environment`, for the line that tells AWS's refusals (`cli.environment_problem`)."""
    from medic.config import Settings

    if not args.stack:
        return Settings.from_env()
    from medic_tools.stack import LOG_OUTPUTS, describe_stack

    verify = getattr(args, "log_command", None) == "verify" and not args.digest_bucket
    args.environment = describe_stack(args.stack).environment(
        LOG_OUTPUTS, os.environ, ("DigestBucketName",) if verify else ()
    )
    return Settings.from_env(args.environment)
