"""`medic alarms FUNCTION`: the recommended CloudWatch alarms for a function (and its database), in the format asked
(`medic_tools.alarms_gen`)."""

from __future__ import annotations

import argparse
import sys

from medic_tools.commands.common import EXIT_OK


def add_arguments(alarms: argparse.ArgumentParser) -> None:
    alarms.add_argument("function", metavar="FUNCTION")
    alarms.add_argument("--alias", help="the alias that serves traffic (adds the spillover and PC-idle alarms)")
    alarms.add_argument("--p99-ms", type=float, default=1000.0, help="the latency objective for p99 Duration")
    alarms.add_argument("--database", help="a DB instance the function connects to")
    alarms.add_argument("--max-connections", type=int, help="that database's max_connections")
    alarms.add_argument("--prefix", default="", help="prefix for the alarm names")
    alarms.add_argument("--format", choices=("cloudformation", "cli", "scenario", "json"), default="cloudformation")


def run(args: argparse.Namespace) -> int:
    from medic_tools.alarms_gen import recommended, render

    definitions = recommended(
        args.function,
        alias=args.alias,
        p99_ms=args.p99_ms,
        database=args.database,
        max_connections=args.max_connections,
        prefix=args.prefix,
    )
    sys.stdout.write(render(definitions, args.format))
    return EXIT_OK
