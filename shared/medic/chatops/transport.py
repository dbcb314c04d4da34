"""Where Slack messages go: Slack's Web API (slack_sdk WebClient), or the console for the demo."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, Protocol

from slack_sdk.errors import SlackClientError
from slack_sdk.models.blocks import Block

from medic.chatops.blocks import blocks_json

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.webhook import WebhookClient

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


class SlackTransport(Protocol):
    def post(self, channel: str, text: str, blocks: list[Block]) -> str:
        """Post a message; return its ts."""
        ...

    def update(self, channel: str, ts: str, text: str, blocks: list[Block]) -> None:
        """Edit a message in place with the bot token (`chat.update`)."""
        ...

    def replace(self, response_url: str, channel: str, ts: str, text: str, blocks: list[Block]) -> None:
        """Replace the message a click came from through the click's `response_url` (no token needed)."""
        ...

    def reply(self, channel: str, thread_ts: str, text: str) -> str: ...

    def whisper(self, response_url: str, channel: str, user: str, text: str) -> None:
        """Tell one user something only they see: through the click's `response_url` when given (no token needed),
        else `chat.postEphemeral`. Slack shows nothing of an HTTP answer to a button click but its status."""
        ...

    def upload(self, channel: str, thread_ts: str, filename: str, content: bytes, title: str, alt_text: str) -> str:
        """Upload a file into a message's thread; return the file id."""
        ...

    def usergroup_members(self, usergroup: str) -> list[str]:
        """The user ids of a Slack user group (`usergroups.users.list`)."""
        ...


class SlackUnreachable(SlackClientError):
    """Slack could not be reached at all (connection refused or reset, timeout).

    Raised in place of the socket error so that callers handle one family, `SlackClientError`, for every way a
    Slack call can fail: Slack being down must never break the use case around it.
    """


#: Seconds to wait on a `response_url` (the interactions endpoint answers Slack within 3 s in all).
RESPONSE_URL_TIMEOUT_S = 2


class WebApiTransport:
    """slack_sdk's WebClient with its retry handlers (429 honours Retry-After).

    `token` is the bot token, or a function that reads it: the WebClient (and the token) are made at the first Web
    API call, so replacing a card through a click's `response_url` (which needs no token) costs neither.

    >>> transport = WebApiTransport(lambda: "xoxb-read-when-needed")  # nothing read or built yet
    >>> transport.client.token
    'xoxb-read-when-needed'
    """

    def __init__(self, token: str | Callable[[], str], base_url: str = "") -> None:
        self._token = token
        self._base_url = base_url

    @cached_property
    def client(self) -> WebClient:
        """The WebClient, made once (the token read then); an error reading the token propagates, and the next
        call tries again."""
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

        token = self._token() if callable(self._token) else self._token
        kwargs: dict[str, Any] = {"token": token, "timeout": 5}
        if self._base_url:
            kwargs["base_url"] = self._base_url.rstrip("/") + "/"
        client = WebClient(**kwargs)
        client.retry_handlers.extend(
            [RateLimitErrorRetryHandler(max_retry_count=2), ConnectionErrorRetryHandler(max_retry_count=2)]
        )
        return client

    def post(self, channel: str, text: str, blocks: list[Block]) -> str:
        with _reachable():
            response = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return str(response["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[Block]) -> None:
        with _reachable():
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def replace(self, response_url: str, channel: str, ts: str, text: str, blocks: list[Block]) -> None:
        from slack_sdk.errors import SlackRequestError

        with _reachable():
            response = _hook(response_url).send(text=text, blocks=blocks, replace_original=True)
        if response.status_code != 200:
            raise SlackRequestError(f"response_url answered {response.status_code}: {str(response.body)[:200]}")

    def reply(self, channel: str, thread_ts: str, text: str) -> str:
        with _reachable():
            response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        return str(response["ts"])

    def whisper(self, response_url: str, channel: str, user: str, text: str) -> None:
        from slack_sdk.errors import SlackRequestError

        if not response_url:
            with _reachable():
                self.client.chat_postEphemeral(channel=channel, user=user, text=text)
            return
        with _reachable():
            response = _hook(response_url).send(text=text, response_type="ephemeral", replace_original=False)
        if response.status_code != 200:
            raise SlackRequestError(f"response_url answered {response.status_code}: {str(response.body)[:200]}")

    def upload(self, channel: str, thread_ts: str, filename: str, content: bytes, title: str, alt_text: str) -> str:
        """files_upload_v2: files.getUploadURLExternal, the upload itself, files.completeUploadExternal."""
        with _reachable():
            response = self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                filename=filename,
                content=content,
                title=title,
                alt_txt=alt_text,
            )
        file = response.get("file") or {}
        return str(file.get("id", "")) if isinstance(file, dict) else ""

    def usergroup_members(self, usergroup: str) -> list[str]:
        with _reachable():
            response = self.client.usergroups_users_list(usergroup=usergroup)
        users = response.get("users") or []
        return [str(user) for user in users]


def _hook(response_url: str) -> WebhookClient:
    """A client for a click's `response_url`: one retry on a dropped connection or a 429, within Slack's 3 s."""
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
    from slack_sdk.webhook import WebhookClient

    return WebhookClient(
        response_url,
        timeout=RESPONSE_URL_TIMEOUT_S,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1), RateLimitErrorRetryHandler(max_retry_count=1)],
    )


@contextmanager
def _reachable() -> Iterator[None]:
    """Turn a socket-level failure (after slack_sdk's own retries) into `SlackUnreachable`."""
    try:
        yield
    except OSError as exc:  # URLError, ConnectionError, TimeoutError: all OSError
        raise SlackUnreachable(f"Slack is unreachable: {exc}") from exc


class ConsoleTransport:
    """Renders messages readably in a terminal (and, optionally, the exact Block Kit JSON).

    Keeps every message it was given, so the simulator can click the buttons it rendered.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        show_json: bool = True,
        ts: Callable[[], str],
        usergroups: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.show_json = show_json
        self._ts = ts
        self.messages: dict[str, dict[str, Any]] = {}
        self.replies: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.replaced_via: list[str] = []  # the response_urls used to replace messages
        self.whispers: list[dict[str, str]] = []  # ephemeral answers to one user
        self.usergroups = {group: list(members) for group, members in (usergroups or {}).items()}

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

    def replace(self, response_url: str, channel: str, ts: str, text: str, blocks: list[Block]) -> None:
        payload = blocks_json(blocks)
        self.messages[ts] = {"channel": channel, "ts": ts, "text": text, "blocks": payload}
        self.replaced_via.append(response_url)
        self._render(f"Slack → #{channel} (message ts={ts} replaced through the click's response_url)", payload)

    def upload(self, channel: str, thread_ts: str, filename: str, content: bytes, title: str, alt_text: str) -> str:
        file_id = f"F{len(self.files) + 1:08d}"
        self.files.append(
            {
                "channel": channel,
                "thread_ts": thread_ts,
                "filename": filename,
                "title": title,
                "alt_text": alt_text,
                "bytes": len(content),
                "id": file_id,
            }
        )
        self._write(f"\n  ┆ Slack thread file (on {thread_ts}): {title} [{filename}, {len(content)} bytes]\n")
        return file_id

    def usergroup_members(self, usergroup: str) -> list[str]:
        return list(self.usergroups.get(usergroup, []))

    def whisper(self, response_url: str, channel: str, user: str, text: str) -> None:
        self.whispers.append(
            {"channel": channel, "user": user, "text": text, "via": response_url or "chat.postEphemeral"}
        )
        self._write(f"\n  ┆ Slack → <@{user}> only, in #{channel}: {text}\n")

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
        text = " ".join(element.get("text", "") for element in block.get("elements", [])).replace("*", "")
        return [_LINK.sub(r"\2", text)]  # a terminal shows a link's label (the URL is in the Block Kit JSON)
    return [f"<{kind} block>"]
