"""`medic control status|kill-switch|breaker-reset`: read or set the kill switch and the circuit breaker (the
MEDIC_* tables, or those `--stack NAME`'s outputs name)."""

from __future__ import annotations

import argparse
import json

from medic_tools.commands.common import EXIT_OK, settings, stack_argument


def add_arguments(control: argparse.ArgumentParser) -> None:
    control_commands = control.add_subparsers(dest="control_command", required=True)
    control_commands.add_parser("status", help="print the controls' state as JSON")
    switch = control_commands.add_parser("kill-switch", help="turn the kill switch on or off")
    switch.add_argument("state", choices=("on", "off"))
    reset = control_commands.add_parser("breaker-reset", help="close the circuit breaker after fixing the cause")
    for sub in (switch, reset):
        sub.add_argument("--by", required=True, help="who (a Slack user id or a name): it is logged")
        sub.add_argument("--reason", default="", help="why: it is logged and shown on refused plans")
    for sub in control_commands.choices.values():
        stack_argument(sub)


def run(args: argparse.Namespace) -> int:
    from medic.clock import SystemClock
    from medic.runtime import Runtime
    from medic.safety import BREAKER_KEY, KILL_SWITCH_KEY, describe

    runtime = Runtime(settings(args))
    now = SystemClock().now()
    if args.control_command == "kill-switch":
        runtime.safety.set_control(KILL_SWITCH_KEY, args.state == "on", args.by, args.reason, now)
    elif args.control_command == "breaker-reset":
        runtime.safety.set_control(BREAKER_KEY, False, args.by, args.reason, now)
    print(json.dumps(describe(runtime.safety, now), indent=2))
    return EXIT_OK
