"""Medic: turn a CloudWatch alarm on a Lambda function into a safe, audited fix."""

__version__ = "0.1.0"
