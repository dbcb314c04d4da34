"""Where Slack messages go: Slack's Web API (slack_sdk WebClient), or the console for the demo."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from typing import IO, Any, Protocol

from slack_sdk.models.blocks import Block

from medic.slack.blocks import blocks_json


class SlackTransport(Protocol):
    def post(self, channel: str, text: str, blocks: list[Block]) -> str:
        """Post a message; return its ts."""
        ...

    def update(self, channel: str, ts: str, text: str, blocks: list[Block]) -> None: ...

    def reply(self, channel: str, thread_ts: str, text: str) -> str: ...


class WebApiTransport:
    """slack_sdk's WebClient with its retry handlers (429 honours Retry-After)."""

    def __init__(self, token: str, base_url: str = "") -> None:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

        kwargs: dict[str, Any] = {"token": token, "timeout": 5}
        if base_url:
            kwargs["base_url"] = base_url.rstrip("/") + "/"
        self.client = WebClient(**kwargs)
        self.client.retry_handlers.extend(
            [RateLimitErrorRetryHandler(max_retry_count=2), ConnectionErrorRetryHandler(max_retry_count=2)]
        )

    def post(self, channel: str, text: str, blocks: list[Block]) -> str:
        response = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return str(response["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[Block]) -> None:
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def reply(self, channel: str, thread_ts: str, text: str) -> str:
        response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        return str(response["ts"])


class ConsoleTransport:
    """Renders messages readably in a terminal (and, optionally, the exact Block Kit JSON).

    Keeps every message it was given, so the simulator can click the buttons it rendered.
    """

    def __init__(self, stream: IO[str] | None = None, *, show_json: bool = True, ts: Callable[[], str]) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.show_json = show_json
        self._ts = ts
        self.messages: dict[str, dict[str, Any]] = {}
        self.replies: list[dict[str, Any]] = []

    def post(self, channel: str, text: str, blocks: list[Block]) -> str:
        ts = self._next_ts()
        payload = blocks_json(blocks)
        self.messages[ts] = {"channel": channel, "ts": ts, "text": text, "blocks": payload}
        self._render(f"Slack → #{channel} (new message ts={ts})", payload)
        return ts

    def update(self, channel: str, ts: str, text: str, blocks: list[Block]) -> None:
        payload = blocks_json(blocks)
        self.messages[ts] = {"channel": channel, "ts": ts, "text": text, "blocks": payload}
        self._render(f"Slack → #{channel} (message ts={ts} updated in place)", payload)

    def reply(self, channel: str, thread_ts: str, text: str) -> str:
        ts = self._next_ts()
        self.replies.append({"channel": channel, "thread_ts": thread_ts, "ts": ts, "text": text})
        self._write(f"\n  ┆ Slack thread reply (on {thread_ts}): {text}\n")
        return ts

    def _next_ts(self) -> str:
        ts = self._ts()
        while ts in self.messages:
            seconds, _, micros = ts.partition(".")
            ts = f"{seconds}.{int(micros or 0) + 1:06d}"
        return ts

    def _render(self, title: str, blocks: list[dict[str, Any]]) -> None:
        lines = [f"\n┌─ {title}"]
        for block in blocks:
            lines.extend(f"│ {line}" for line in render_block(block))
        lines.append("└─")
        if self.show_json:
            lines.append("  Block Kit JSON:")
            lines.extend("  " + line for line in json.dumps(blocks, indent=2).splitlines())
        self._write("\n".join(lines) + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def render_block(block: dict[str, Any]) -> list[str]:
    """A terminal rendering of one Block Kit block."""
    kind = block.get("type")
    if kind == "header":
        title = block["text"]["text"]
        return [title.upper(), "═" * min(len(title), 70)]
    if kind == "section":
        text = block.get("text", {}).get("text", "")
        out: list[str] = []
        for paragraph in text.splitlines() or [""]:
            out.extend(textwrap.wrap(paragraph.replace("*", ""), width=96) or [""])
        return out
    if kind == "divider":
        return ["─" * 40]
    if kind == "actions":
        buttons = [f"[ {element['text']['text']} ]" for element in block.get("elements", [])]
        return ["  ".join(buttons)]
    if kind == "context":
        return [" ".join(element.get("text", "") for element in block.get("elements", [])).replace("*", "")]
    return [f"<{kind} block>"]
