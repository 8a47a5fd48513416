"""A fake Slack Web API over real HTTP, and signed Slack requests into Pinwall's endpoint.

`FakeSlack` is an aiohttp server on 127.0.0.1, port 0, in a thread with its own event loop.
Point slack_sdk at it with `AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)`.
It answers `/api/<method>` (GET query, form-urlencoded, JSON or multipart bodies, the token
in `Authorization: Bearer` or a `token` field) as Slack does: HTTP 200 with `{"ok": true, ...}`
or `{"ok": false, "error": "..."}`; HTTP 429 + `Retry-After` when rate limited.

Faithful: token checks (not_authed / invalid_auth / not_allowed_token_type), Block Kit limits
(invalid_blocks with Slack's `errors` / `response_metadata.messages` json-pointer texts),
channel membership (not_in_channel, user_not_in_channel), DMs of deactivated users
(user_disabled), bot-only chat.update, the three-step files_upload_v2 flow, private file
URLs that need the bot token (without it: 302 to an HTML sign-in page), Retry-After windows
(calls inside one are answered 429 again and recorded in `early`), Socket Mode
(apps.connections.open with the xapp token → a websocket that says hello, carries
envelopes and takes acks).

Modals: views.open takes a trigger_id that SlackRequests issued (unknown: invalid_trigger_id,
used twice: exchanged_trigger_id, older than 3 s: expired_trigger_id) and a modal view it
checks (title/submit/close up to 24 characters, submit with input blocks, private_metadata up
to 3,000); `SlackRequests.view_submission` submits the opened modal with typed values.

Simplified: one workspace, no pagination, no Enterprise Grid, no real permissions/scopes,
only the Block Kit elements Pinwall uses are checked in depth (others by shape),
threads are not checked to exist, file shares are synchronous.

`SlackRequests` builds the bodies and headers Slack sends to an app (slash commands,
block_actions, message shortcuts, Events API callbacks) and POSTs them signed with httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import math
import mimetypes
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar
from urllib.parse import quote, urlencode

import httpx
from aiohttp import WSMsgType, web
from aiohttp.web_request import FileField

from adapters.slack.doctor import required_scopes

BOT_TOKEN = "xoxb-1111-2222-pinwalltest"
MANIFEST_SCOPES = sorted(required_scopes())
APP_TOKEN = "xapp-1-A0PINWALL-1-pinwalltest"
TEAM_ID = "T0PINWALL"
TEAM_DOMAIN = "pinwall"
APP_ID = "A0PINWALL"
BOT_USER_ID = "UBOT"
BOT_ID = "B0PINWALL"
BOT_NAME = "pinwall"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40_000
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_HEADER_TEXT = 150
MAX_ID = 255
MAX_URL = 3000
MAX_MODAL_TEXT = 24  # a modal's title, submit and close
MAX_METADATA = 3000
MAX_INPUT_LABEL = 2000
MAX_INPUT_LENGTH = 3000
MAX_PLACEHOLDER = 150
MAX_OPTIONS = 100  # of a static select
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
TRIGGER_TTL = 3.0  # seconds a trigger_id can open a modal


class SlackError(Exception):
    """An {"ok": false, "error": ...} answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# --- what the fake records ------------------------------------------------------------------


@dataclass
class Posted:
    """A message the bot posted (chat.postMessage / chat.postEphemeral), or a file share in
    a channel's history (kind "file", only in messages_in)."""

    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    user: str | None = None  # the recipient of an ephemeral
    kind: Literal["message", "ephemeral", "file"] = "message"
    unfurl_links: bool | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    edited: bool = False
    at: float = 0.0


@dataclass
class Update:
    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    at: float


@dataclass
class Reaction:
    channel: str
    ts: str
    name: str
    user: str


@dataclass
class SharedFile:
    """A file the bot uploaded with files_upload_v2 and shared (or not: channel None)."""

    id: str
    name: str
    title: str | None
    size: int
    sha256: str
    mimetype: str
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None
    data: bytes = field(repr=False)


@dataclass
class EarlyCall:
    """A call that came while a Retry-After the fake had given had not passed yet."""

    method: str
    at: float
    allowed_at: float


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    status: int
    error: str | None
    at: float


@dataclass
class OpenedView:
    """A modal the app opened with views.open (closed once submitted without errors)."""

    id: str
    user: str
    trigger_id: str
    view: dict[str, Any]
    at: float
    closed: bool = False


@dataclass
class _User:
    id: str
    name: str
    real_name: str | None
    display_name: str | None
    locale: str
    is_restricted: bool
    is_ultra_restricted: bool
    deleted: bool
    is_bot: bool
    team_id: str
    email: str | None = None
    is_email_confirmed: bool = True

    def to_api(self, include_locale: bool = False, with_email: bool = False) -> dict[str, Any]:
        real = self.real_name if self.real_name is not None else self.name
        out: dict[str, Any] = {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": real,
            "tz": "Europe/Berlin",
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "profile": {
                "real_name": real,
                "real_name_normalized": real,
                "display_name": self.display_name or "",
                "display_name_normalized": self.display_name or "",
                "team": self.team_id,
            },
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }
        if self.is_bot:
            out["profile"]["bot_id"] = BOT_ID if self.id == BOT_USER_ID else "B" + self.id[1:]
        if include_locale:
            out["locale"] = self.locale
        if self.email is not None and not self.is_bot:
            out["is_email_confirmed"] = self.is_email_confirmed
            if with_email:  # the profile's address only with the scope users:read.email
                out["profile"]["email"] = self.email
        return out


@dataclass
class _Channel:
    id: str
    name: str | None
    members: set[str]
    im_user: str | None = None
    is_archived: bool = False
    messages: dict[str, Posted] = field(default_factory=dict)  # ts -> current state


@dataclass
class _File:
    id: str
    name: str
    title: str | None
    mimetype: str
    user: str
    created: int
    length: int | None = None
    data: bytes | None = None
    upload_secret: str = ""
    completed: bool = False
    channels: list[str] = field(default_factory=list)


@dataclass
class _RateRule:
    method: str | None
    seconds: int
    remaining: int


_T = TypeVar("_T")


def _form_bytes(value: bytes | bytearray | FileField) -> bytes:
    return bytes(value) if isinstance(value, bytes | bytearray) else value.file.read()


class _Snapshot(Generic[_T]):
    """A class attribute that reads a deep copy of a recorded list/dict under the lock."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj: FakeSlack, owner: type | None = None) -> _T:
        with obj._lock:
            return copy.deepcopy(getattr(obj, self.attr))  # type: ignore[no-any-return]


# --- request parameters ---------------------------------------------------------------------


class _Params:
    """Parameters from a query string, form or JSON body; JSON values keep their types."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)

    def required(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] missing required field: {key}"]},
            )
        return value

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true") if value is not None else False

    def json(self, key: str, error: str) -> Any:
        value = self.values.get(key)
        if value is None or isinstance(value, list | dict):
            return value
        try:
            return json.loads(str(value))
        except ValueError:
            raise SlackError(error) from None


# --- Block Kit validation -------------------------------------------------------------------


def _text_errors(obj: Any, where: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must provide an object [json-pointer:{where}]"]
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        what = "plain_text" if plain_only else "plain_text or mrkdwn"
        return [f"must be a {what} text object [json-pointer:{where}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


_INTERACTIVE = frozenset(
    [
        "button",
        "static_select",
        "multi_static_select",
        "users_select",
        "multi_users_select",
        "overflow",
        "conversations_select",
        "multi_conversations_select",
        "channels_select",
        "multi_channels_select",
        "external_select",
        "multi_external_select",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
    ]
)


def _element_errors(el: Any, where: str) -> list[str]:
    if not isinstance(el, dict):
        return [f"must provide an object [json-pointer:{where}]"]
    kind = el.get("type")
    if kind == "image":
        return _image_errors(el, where)
    if kind not in _INTERACTIVE:
        return [f"unsupported type: {kind} [json-pointer:{where}/type]"]
    errors: list[str] = []
    action_id = el.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > MAX_ID):
        errors.append(f"must be less than {MAX_ID + 1} characters [json-pointer:{where}/action_id]")
    if kind == "static_select":
        errors += _select_errors(el, where)
    if kind == "button":
        errors += _text_errors(
            el.get("text"), f"{where}/text", limit=MAX_BUTTON_TEXT, plain_only=True
        )
        value = el.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
            errors.append(
                f"must be less than {MAX_BUTTON_VALUE + 1} characters [json-pointer:{where}/value]"
            )
        url = el.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > MAX_URL):
            errors.append(f"must be less than {MAX_URL + 1} characters [json-pointer:{where}/url]")
        style = el.get("style")
        if style is not None and style not in ("primary", "danger"):
            errors.append(f"must be one of primary, danger [json-pointer:{where}/style]")
    return errors


def _select_errors(el: dict[str, Any], where: str) -> list[str]:
    """A static_select: 1 to 100 options, each a plain_text of up to 75 characters and a
    value of up to 150; or instead option_groups: 1 to 100 groups, each a plain_text
    label of up to 75 characters and 1 to 100 such options (values unique across them);
    an initial_option that is one of them; a placeholder up to 150."""
    groups = el.get("option_groups")
    if groups is not None:
        if "options" in el:
            return [f"must provide either options or option_groups [json-pointer:{where}]"]
        if not isinstance(groups, list) or not groups or len(groups) > MAX_OPTIONS:
            return [f"must provide 1 to {MAX_OPTIONS} items [json-pointer:{where}/option_groups]"]
        errors: list[str] = []
        every: list[Any] = []
        for g, group in enumerate(groups):
            at = f"{where}/option_groups/{g}"
            if not isinstance(group, dict):
                errors.append(f"must provide an object [json-pointer:{at}]")
                continue
            errors += _text_errors(
                group.get("label"), f"{at}/label", limit=MAX_OPTION_TEXT, plain_only=True
            )
            errors += _select_errors({"options": group.get("options")}, at)
            every += group.get("options") or []
        values = [o.get("value") for o in every if isinstance(o, dict)]
        if len(values) != len(set(values)):
            errors.append(f"duplicate option value [json-pointer:{where}/option_groups]")
        initial = el.get("initial_option")
        if initial is not None and initial not in every:
            errors.append(f"must match one of the options [json-pointer:{where}/initial_option]")
        return errors
    options = el.get("options")
    if not isinstance(options, list) or not options:
        return [f"must provide a non-empty array [json-pointer:{where}/options]"]
    errors = []
    if len(options) > MAX_OPTIONS:
        errors.append(
            f"must provide no more than {MAX_OPTIONS} items [json-pointer:{where}/options]"
        )
    values: set[str] = set()
    for j, option in enumerate(options):
        at = f"{where}/options/{j}"
        if not isinstance(option, dict):
            errors.append(f"must provide an object [json-pointer:{at}]")
            continue
        errors += _text_errors(
            option.get("text"), f"{at}/text", limit=MAX_OPTION_TEXT, plain_only=True
        )
        value = option.get("value")
        if not isinstance(value, str) or not value or len(value) > MAX_OPTION_VALUE:
            errors.append(
                f"must be less than {MAX_OPTION_VALUE + 1} characters [json-pointer:{at}/value]"
            )
        elif value in values:
            errors.append(f"duplicate option value [json-pointer:{at}/value]")
        else:
            values.add(value)
    initial = el.get("initial_option")
    if initial is not None and initial not in options:
        errors.append(f"must match one of the options [json-pointer:{where}/initial_option]")
    if el.get("placeholder") is not None:
        errors += _text_errors(
            el["placeholder"], f"{where}/placeholder", limit=MAX_PLACEHOLDER, plain_only=True
        )
    return errors


def _image_errors(el: dict[str, Any], where: str) -> list[str]:
    errors = []
    url = el.get("image_url")
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        errors.append(f"must provide a valid image_url [json-pointer:{where}/image_url]")
    alt = el.get("alt_text")
    if not isinstance(alt, str) or not alt or len(alt) > 2000:
        errors.append(f"must provide alt_text [json-pointer:{where}/alt_text]")
    return errors


def validate_blocks(
    blocks: Any, *, limit: int = MAX_MESSAGE_BLOCKS, root: str = "/blocks"
) -> list[str]:
    """Slack's error texts for blocks it would refuse (an empty list: fine)."""
    if not isinstance(blocks, list):
        return [f"must provide an array [json-pointer:{root}]"]
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"must provide no more than {limit} items [json-pointer:{root}]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"{root}/{i}"
        if not isinstance(block, dict):
            errors.append(f"must provide an object [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > MAX_ID:
                errors.append(f"invalid block_id [json-pointer:{where}/block_id]")
            elif block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            else:
                block_ids.add(block_id)
        errors += _block_errors(block, where)
    return errors


def _block_errors(block: dict[str, Any], where: str) -> list[str]:
    kind = block.get("type")
    errors: list[str] = []
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            errors.append(f"must provide either text or fields [json-pointer:{where}]")
        if text is not None:
            errors += _text_errors(text, f"{where}/text", limit=MAX_SECTION_TEXT)
        if fields is not None:
            if not isinstance(fields, list) or not fields:
                errors.append(f"must provide an array [json-pointer:{where}/fields]")
            else:
                if len(fields) > MAX_FIELDS:
                    errors.append(
                        f"must provide no more than {MAX_FIELDS} items "
                        f"[json-pointer:{where}/fields]"
                    )
                for j, f in enumerate(fields):
                    errors += _text_errors(f, f"{where}/fields/{j}", limit=MAX_FIELD_TEXT)
        if block.get("accessory") is not None:
            errors += _element_errors(block["accessory"], f"{where}/accessory")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            return [f"must provide a non-empty array [json-pointer:{where}/elements]"]
        if len(elements) > MAX_ACTION_ELEMENTS:
            errors.append(
                f"must provide no more than {MAX_ACTION_ELEMENTS} items "
                f"[json-pointer:{where}/elements]"
            )
        seen: set[str] = set()
        for j, el in enumerate(elements):
            errors += _element_errors(el, f"{where}/elements/{j}")
            action_id = el.get("action_id") if isinstance(el, dict) else None
            if isinstance(action_id, str):
                if action_id in seen:
                    errors.append(
                        f"action_id must be unique within a block "
                        f"[json-pointer:{where}/elements/{j}/action_id]"
                    )
                seen.add(action_id)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            return [f"must provide a non-empty array [json-pointer:{where}/elements]"]
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            errors.append(
                f"must provide no more than {MAX_CONTEXT_ELEMENTS} items "
                f"[json-pointer:{where}/elements]"
            )
        for j, el in enumerate(elements):
            if isinstance(el, dict) and el.get("type") == "image":
                errors += _image_errors(el, f"{where}/elements/{j}")
            else:
                errors += _text_errors(el, f"{where}/elements/{j}", limit=MAX_SECTION_TEXT)
    elif kind == "header":
        errors += _text_errors(
            block.get("text"), f"{where}/text", limit=MAX_HEADER_TEXT, plain_only=True
        )
    elif kind == "image":
        errors += _image_errors(block, where)
    elif kind == "input":
        errors += _input_errors(block, where)
    elif kind in ("divider", "rich_text", "file", "video", "markdown"):
        pass
    else:
        errors.append(f"unsupported type: {kind} [json-pointer:{where}/type]")
    return errors


def _input_errors(block: dict[str, Any], where: str) -> list[str]:
    errors = _text_errors(
        block.get("label"), f"{where}/label", limit=MAX_INPUT_LABEL, plain_only=True
    )
    el = block.get("element")
    if not isinstance(el, dict):
        return [*errors, f"must provide an object [json-pointer:{where}/element]"]
    if el.get("type") != "plain_text_input":
        return [*errors, *_element_errors(el, f"{where}/element")]
    action_id = el.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > MAX_ID):
        errors.append(f"must be less than {MAX_ID + 1} characters [json-pointer:{where}/element]")
    low, high = el.get("min_length", 0), el.get("max_length", MAX_INPUT_LENGTH)
    if not isinstance(low, int) or not 0 <= low <= MAX_INPUT_LENGTH:
        errors.append(f"invalid min_length [json-pointer:{where}/element/min_length]")
    if not isinstance(high, int) or not 1 <= high <= MAX_INPUT_LENGTH:
        errors.append(f"invalid max_length [json-pointer:{where}/element/max_length]")
    elif isinstance(low, int) and low > high:
        errors.append(f"min_length must not exceed max_length [json-pointer:{where}/element]")
    if el.get("placeholder") is not None:
        errors += _text_errors(
            el["placeholder"],
            f"{where}/element/placeholder",
            limit=MAX_PLACEHOLDER,
            plain_only=True,
        )
    return errors


def validate_modal(view: Any) -> list[str]:
    """Slack's error texts for a modal view it would refuse in views.open."""
    if not isinstance(view, dict):
        return ["must provide an object [json-pointer:/view]"]
    errors: list[str] = []
    if view.get("type") != "modal":
        errors.append("must be modal [json-pointer:/view/type]")
    errors += _text_errors(view.get("title"), "/view/title", limit=MAX_MODAL_TEXT, plain_only=True)
    for key in ("submit", "close"):
        if view.get(key) is not None:
            errors += _text_errors(view[key], f"/view/{key}", limit=MAX_MODAL_TEXT, plain_only=True)
    blocks = view.get("blocks")
    errors += validate_blocks(blocks, limit=MAX_VIEW_BLOCKS, root="/view/blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if has_input and view.get("submit") is None:
        errors.append("must provide submit when using input blocks [json-pointer:/view/submit]")
    metadata = view.get("private_metadata")
    if metadata is not None and (not isinstance(metadata, str) or len(metadata) > MAX_METADATA):
        errors.append(
            f"must be less than {MAX_METADATA + 1} characters [json-pointer:/view/private_metadata]"
        )
    callback_id = view.get("callback_id")
    if callback_id is not None and (not isinstance(callback_id, str) or len(callback_id) > MAX_ID):
        errors.append(f"must be less than {MAX_ID + 1} characters [json-pointer:/view/callback_id]")
    return errors


# --- the fake -------------------------------------------------------------------------------


class FakeSlack:
    """The Slack Web API of one workspace, the bot's private files and Socket Mode."""

    def __init__(
        self,
        *,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        team_id: str = TEAM_ID,
        team_domain: str = TEAM_DOMAIN,
        scopes: Sequence[str] | None = None,
    ) -> None:
        self.bot_token = bot_token
        # The bot token's scopes, named in every answer's X-OAuth-Scopes header as Slack
        # does (default: the ones Pinwall's app manifest asks for).
        self.scopes = list(MANIFEST_SCOPES if scopes is None else scopes)
        self.app_token = app_token
        self.team_id = team_id
        self.team_domain = team_domain
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._dms: dict[str, str] = {}  # user id (or sorted ids) -> D/G channel id
        self._files: dict[str, _File] = {}
        self._ids = itertools.count(1)
        self._last_ts_us = 0

        self._calls: list[str] = []
        self._requests: list[ApiCall] = []
        self._posted: list[Posted] = []
        self._updates: list[Update] = []
        self._ephemerals: list[Posted] = []
        self._home_views: dict[str, dict[str, Any]] = {}
        self._views: list[OpenedView] = []
        self._triggers: dict[str, tuple[float, str]] = {}  # trigger_id -> (issued, user)
        self._exchanged: set[str] = set()
        self._uploaded: list[SharedFile] = []
        self._reactions: list[Reaction] = []
        # (channel, ts) of the people's own messages sent as events: the bot may react
        # to them (reactions.add), as to its own.
        self._user_messages: set[tuple[str, str]] = set()
        self._early: list[EarlyCall] = []
        self._errors: list[str] = []
        self._downloads: list[tuple[str, bool]] = []  # (file id, with the bot token)
        self._rate_rules: list[_RateRule] = []
        self._windows: dict[str | None, float] = {}

        self._sockets: list[web.WebSocketResponse] = []
        self._refusing: str | None = None  # apps.connections.open's error while set
        self._acks: list[dict[str, Any]] = []
        self._tickets: set[str] = set()

        self.add_user(BOT_USER_ID, BOT_NAME, real_name="Pinwall", is_bot=True)
        self._methods: dict[str, Callable[[_Params], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "users.info": self._users_info,
            "conversations.open": self._conversations_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "reactions.add": self._reactions_add,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
        }

    # --- life -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def start(self) -> Self:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="fake-slack")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("POST", "/upload/v1/{file_id}/{secret}", self._handle_upload)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._handle_file)
        app.router.add_get("/files-pri/{team_file}/{name}", self._handle_file)
        app.router.add_get("/", self._handle_signin)
        app.router.add_get("/link/", self._handle_socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- workspace --------------------------------------------------------------------------

    def add_user(
        self,
        id: str,
        name: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        locale: str = "en-US",
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        team_id: str | None = None,
        email: str | None = None,
        is_email_confirmed: bool = True,
    ) -> dict[str, Any]:
        """Adds (or replaces) a person; returns the user object as users.info shows it."""
        user = _User(
            id,
            name,
            real_name,
            display_name,
            locale,
            is_restricted,
            is_ultra_restricted,
            deleted,
            is_bot,
            team_id or self.team_id,
            email,
            is_email_confirmed,
        )
        with self._lock:
            self._users[id] = user
            return user.to_api(include_locale=True, with_email=self._reads_email)

    def update_user(self, user_id: str, **changes: Any) -> dict[str, Any]:
        """Changes a person (deleted=True deactivates); returns the object for user_change."""
        with self._lock:
            user = self._users[user_id]
            for key, value in changes.items():
                if not hasattr(user, key):
                    raise AttributeError(key)
                setattr(user, key, value)
            return user.to_api(include_locale=True)

    def add_channel(
        self,
        id: str,
        name: str,
        members: list[str] | tuple[str, ...] = (),
        *,
        bot_member: bool = True,
    ) -> None:
        with self._lock:
            people = set(members) | ({BOT_USER_ID} if bot_member else set())
            self._channels[id] = _Channel(id=id, name=name, members=people)

    def dm_channel(self, user_id: str) -> str:
        """The stable D... channel of the bot and this person (as conversations.open gives)."""
        with self._lock:
            if user_id not in self._dms:
                channel_id = f"D{next(self._ids):08d}"
                self._dms[user_id] = channel_id
                self._channels[channel_id] = _Channel(
                    id=channel_id, name=None, members={user_id, BOT_USER_ID}, im_user=user_id
                )
            return self._dms[user_id]

    def user_uploads(
        self, user_id: str, name: str, data: bytes, mimetype: str | None = None
    ) -> dict[str, Any]:
        """A file a person shared; returns it as a message event's `files` shows it."""
        with self._lock:
            f = self._new_file(name, None, mimetype, user_id)
            f.data, f.length, f.completed = bytes(data), len(data), True
            return self._file_object(f)

    def rate_limit(self, seconds: int = 1, count: int = 1, method: str | None = None) -> None:
        """The next `count` calls (of `method`, or any) are answered 429 with Retry-After:
        seconds. Calls inside a Retry-After window are answered 429 too and recorded early."""
        with self._lock:
            self._rate_rules.append(_RateRule(method, max(1, int(seconds)), count))

    # --- inspection -------------------------------------------------------------------------

    calls = _Snapshot[list[str]]("_calls")  # method names, every call
    requests = _Snapshot[list[ApiCall]]("_requests")
    posted = _Snapshot[list[Posted]]("_posted")  # messages and ephemerals as posted
    updates = _Snapshot[list[Update]]("_updates")
    ephemerals = _Snapshot[list[Posted]]("_ephemerals")
    home_views = _Snapshot[dict[str, dict[str, Any]]]("_home_views")  # user id -> view
    views = _Snapshot[list[OpenedView]]("_views")  # modals opened with views.open
    uploaded = _Snapshot[list[SharedFile]]("_uploaded")
    reactions = _Snapshot[list[Reaction]]("_reactions")
    early = _Snapshot[list[EarlyCall]]("_early")
    errors = _Snapshot[list[str]]("_errors")  # tracebacks inside the fake: assert it is []
    downloads = _Snapshot[list[tuple[str, bool]]]("_downloads")  # (file id, had the token)
    acks = _Snapshot[list[dict[str, Any]]]("_acks")  # Socket Mode acks ({"envelope_id"...})

    def user_wrote(self, channel: str, ts: str) -> None:
        """A person's message exists in the channel (events.message_event says so)."""
        with self._lock:
            self._user_messages.add((channel, ts))

    def messages_in(self, channel: str) -> list[Posted]:
        """The channel's messages by the bot as they are now (updates applied), oldest first."""
        with self._lock:
            state = self._channels.get(channel)
            return copy.deepcopy(list(state.messages.values())) if state else []

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "the condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(self._timeout_message(what, timeout))
            time.sleep(0.005)

    async def wait_for_async(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_for
        what: str = "the condition",
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(self._timeout_message(what, timeout))
            await asyncio.sleep(0.005)

    def _timeout_message(self, what: str, timeout: float) -> str:
        with self._lock:
            calls = self._calls[-15:]
            posted = [(p.channel, p.text) for p in self._posted[-5:]]
            errors = len(self._errors)
        return (
            f"FakeSlack: timed out after {timeout}s waiting for {what}; last calls {calls}, "
            f"last posted {posted}, {errors} server errors"
        )

    # --- HTTP -------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> _Params:
        values: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    values.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    values[key] = value if isinstance(value, str) else _form_bytes(value)
        return _Params(values)

    def _token(self, request: web.Request, params: _Params) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :].strip()
        return params.text("token")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await self._params(request)
            token = self._token(request, params)
            with self._lock:
                return self._api(method, params, token)
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            return web.json_response({"ok": False, "error": "fatal_error"}, status=500)

    def _api(self, method: str, params: _Params, token: str | None) -> web.StreamResponse:
        now = time.monotonic()
        self._calls.append(method)
        shown = {
            k: v for k, v in params.values.items() if k != "token" and not isinstance(v, bytes)
        }
        call = ApiCall(method, shown, 200, None, now)
        self._requests.append(call)
        try:
            if not token:
                raise SlackError("not_authed")
            if method == "apps.connections.open":
                if token != self.app_token:
                    raise SlackError(
                        "not_allowed_token_type" if token == self.bot_token else "invalid_auth"
                    )
                if self._refusing is not None:
                    raise SlackError(self._refusing)
                return web.json_response(self._connections_open())
            if token == self.app_token:
                raise SlackError("not_allowed_token_type")
            if token != self.bot_token:
                raise SlackError("invalid_auth")
            handler = self._methods.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            retry_after = self._rate_limited(method, now)
            if retry_after is not None:
                call.status, call.error = 429, "ratelimited"
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(retry_after)},
                )
            return web.json_response(
                {"ok": True, **handler(params)},
                headers={"X-OAuth-Scopes": ",".join(self.scopes)},
            )
        except SlackError as exc:
            call.error = exc.error
            return web.json_response({"ok": False, "error": exc.error, **exc.extra})

    def _rate_limited(self, method: str, now: float) -> int | None:
        for key in (method, None):
            allowed = self._windows.get(key)
            if allowed is not None and now < allowed:
                self._early.append(EarlyCall(method, now, allowed))
                return max(1, math.ceil(allowed - now))
        for rule in self._rate_rules:
            if rule.remaining > 0 and rule.method in (None, method):
                rule.remaining -= 1
                self._windows[rule.method] = now + rule.seconds
                return rule.seconds
        return None

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.content_type == "multipart/form-data":
                form = await request.post()
                parts = [v for v in form.values() if not isinstance(v, str)]
                data = _form_bytes(parts[0]) if parts else b""
            else:
                data = await request.read()
            with self._lock:
                f = self._files.get(request.match_info["file_id"])
                if f is None or f.upload_secret != request.match_info["secret"] or f.completed:
                    return web.Response(status=404, text="Not Found")
                f.data = data
            return web.Response(text=f"OK - {len(data)}")
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            return web.Response(status=500)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        team, _, file_id = request.match_info["team_file"].partition("-")
        auth = request.headers.get("Authorization", "")
        authorized = auth == f"Bearer {self.bot_token}"
        with self._lock:
            f = self._files.get(file_id)
            self._downloads.append((file_id, authorized))
            if not authorized:
                raise web.HTTPFound(f"/?redir={quote(request.path_qs, safe='')}")
            if f is None or f.data is None or team != self.team_id:
                return web.Response(status=404, text="File not found")
            data, mimetype = f.data, f.mimetype
        return web.Response(body=data, content_type=mimetype)

    async def _handle_signin(self, request: web.Request) -> web.StreamResponse:
        page = (
            "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head>"
            f"<body><h1>Sign in to {self.team_domain}.slack.com</h1></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    # --- API methods ------------------------------------------------------------------------

    def _next_ts(self) -> str:
        us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _auth_test(self, p: _Params) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Pinwall",
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _find_user(self, user_id: str | None) -> _User:
        user = self._users.get(user_id or "")
        if user is None:
            raise SlackError("user_not_found")
        return user

    def _users_info(self, p: _Params) -> dict[str, Any]:
        user = self._find_user(p.required("user"))
        return {
            "user": user.to_api(
                include_locale=p.flag("include_locale"), with_email=self._reads_email
            )
        }

    @property
    def _reads_email(self) -> bool:
        return "users:read.email" in self.scopes

    def _conversations_open(self, p: _Params) -> dict[str, Any]:
        ids = [u.strip() for u in (p.text("users") or "").split(",") if u.strip()]
        if p.text("channel"):
            state = self._channel(p.text("channel"))
            return {"channel": {"id": state.id}, "already_open": True}
        if not ids:
            raise SlackError("users_list_not_supplied")
        for user_id in ids:
            if self._find_user(user_id).deleted:
                raise SlackError("user_disabled")
        if len(ids) == 1:
            if ids[0] == BOT_USER_ID:
                raise SlackError("cannot_dm_bot")
            already = ids[0] in self._dms
            return {
                "channel": {"id": self.dm_channel(ids[0])},
                "no_op": already,
                "already_open": already,
            }
        key = ",".join(sorted(ids))
        if key not in self._dms:
            channel_id = f"G{next(self._ids):08d}"
            self._dms[key] = channel_id
            self._channels[channel_id] = _Channel(channel_id, None, {*ids, BOT_USER_ID})
        return {"channel": {"id": self._dms[key]}}

    def _channel(self, ref: str | None) -> _Channel:
        ref = (ref or "").strip()
        if not ref:
            raise SlackError("channel_not_found")
        if ref.startswith("U") and ref in self._users:  # posting to a user id: the app's DM
            ref = self.dm_channel(ref)
        state = self._channels.get(ref)
        if state is None:
            name = ref.lstrip("#")
            state = next((c for c in self._channels.values() if c.name == name), None)
        if state is None:
            raise SlackError("channel_not_found")
        return state

    def _postable(self, p: _Params) -> _Channel:
        state = self._channel(p.required("channel") if p.text("channel") else None)
        if state.is_archived:
            raise SlackError("is_archived")
        if state.im_user is not None and self._users[state.im_user].deleted:
            raise SlackError("user_disabled")
        if BOT_USER_ID not in state.members:
            raise SlackError("not_in_channel")
        return state

    def _content(self, p: _Params, *, required: bool) -> tuple[str | None, list[Any] | None]:
        text = p.text("text")
        blocks = p.json("blocks", "invalid_blocks_format")
        attachments = p.json("attachments", "invalid_attachments")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            errors = validate_blocks(blocks)
            if errors:
                raise SlackError(
                    "invalid_blocks",
                    errors=errors,
                    response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
                )
        if required and not text and not blocks and not attachments:
            raise SlackError("no_text")
        if text is not None and len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return text, blocks

    def _message_object(self, post: Posted) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "user": BOT_USER_ID,
            "type": "message",
            "ts": post.ts,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": post.text or "",
            "team": self.team_id,
            "bot_profile": {
                "id": BOT_ID,
                "app_id": APP_ID,
                "name": BOT_NAME,
                "team_id": self.team_id,
                "deleted": False,
            },
        }
        if post.blocks is not None:
            msg["blocks"] = copy.deepcopy(post.blocks)
        if post.thread_ts:
            msg["thread_ts"] = post.thread_ts
        if post.files:
            msg["files"] = copy.deepcopy(post.files)
            msg["upload"] = True
        if post.edited:
            msg["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return msg

    def _chat_post_message(self, p: _Params) -> dict[str, Any]:
        state = self._postable(p)
        text, blocks = self._content(p, required=True)
        unfurl = p.values.get("unfurl_links")
        post = Posted(
            channel=state.id,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=p.text("thread_ts") or None,
            kind="message",
            unfurl_links=None if unfurl is None else p.flag("unfurl_links"),
            at=time.monotonic(),
        )
        self._posted.append(copy.deepcopy(post))
        state.messages[post.ts] = post
        return {"channel": state.id, "ts": post.ts, "message": self._message_object(post)}

    def _chat_update(self, p: _Params) -> dict[str, Any]:
        state = self._channel(p.required("channel") if p.text("channel") else None)
        ts = p.text("ts") or ""
        post = state.messages.get(ts)
        if post is None or post.kind == "file":
            raise SlackError("message_not_found")
        text, blocks = self._content(p, required=False)
        if text is not None:
            post.text = text
        if blocks is not None:
            post.blocks = blocks
        post.edited = True
        self._updates.append(Update(state.id, ts, text, blocks, time.monotonic()))
        return {
            "channel": state.id,
            "ts": ts,
            "text": post.text or "",
            "message": self._message_object(post),
        }

    def _chat_post_ephemeral(self, p: _Params) -> dict[str, Any]:
        state = self._postable(p)
        user = self._find_user(p.required("user"))
        if user.id not in state.members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(p, required=True)
        post = Posted(
            channel=state.id,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=p.text("thread_ts") or None,
            user=user.id,
            kind="ephemeral",
            at=time.monotonic(),
        )
        self._posted.append(copy.deepcopy(post))
        self._ephemerals.append(post)
        return {"message_ts": post.ts}

    def _views_publish(self, p: _Params) -> dict[str, Any]:
        user = self._find_user(p.required("user_id"))
        view = p.json("view", "invalid_arguments")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        problems: list[str] = []
        if view.get("type") != "home":
            problems.append("must be home [json-pointer:/view/type]")
        problems += validate_blocks(view.get("blocks"), limit=MAX_VIEW_BLOCKS, root="/view/blocks")
        if problems:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in problems]},
            )
        stored = copy.deepcopy(view)
        self._home_views[user.id] = stored
        return {
            "view": {
                "id": f"V{abs(hash(user.id)) % 10**10:010d}",
                "team_id": self.team_id,
                "app_id": APP_ID,
                "bot_id": BOT_ID,
                "hash": f"{time.time():.6f}",
                **copy.deepcopy(stored),
            }
        }

    def issue_trigger(self, trigger_id: str, user_id: str = "") -> None:
        """A trigger_id Slack sent with a person's interaction: it opens one modal, for
        them, within 3 s."""
        with self._lock:
            self._triggers[trigger_id] = (time.monotonic(), user_id)

    def opened_view(self, view_id: str) -> OpenedView | None:
        with self._lock:
            found = [v for v in self._views if v.id == view_id]
            return copy.deepcopy(found[-1]) if found else None

    def close_view(self, view_id: str) -> None:
        with self._lock:
            for v in self._views:
                if v.id == view_id:
                    v.closed = True

    def _views_open(self, p: _Params) -> dict[str, Any]:
        trigger = p.text("trigger_id") or p.text("interactivity_pointer")
        if not trigger:
            raise SlackError("invalid_arguments")
        found = self._triggers.get(trigger)
        if found is None:
            raise SlackError("invalid_trigger_id")
        issued, user = found
        if trigger in self._exchanged:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - issued > TRIGGER_TTL:
            raise SlackError("expired_trigger_id")
        view = p.json("view", "invalid_arguments")
        problems = validate_modal(view)
        if problems:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in problems]},
            )
        self._exchanged.add(trigger)
        view_id = f"V{next(self._ids):010d}"
        opened = OpenedView(
            id=view_id, user=user, trigger_id=trigger, view=copy.deepcopy(view), at=time.monotonic()
        )
        self._views.append(opened)
        return {"view": self._view_object(opened)}

    def _view_object(self, opened: OpenedView) -> dict[str, Any]:
        view = opened.view
        return {
            "id": opened.id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": copy.deepcopy(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata") or "",
            "callback_id": view.get("callback_id") or "",
            "state": {"values": {}},
            "hash": f"{time.time():.6f}",
            "title": copy.deepcopy(view.get("title")),
            "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": None,
            "root_view_id": opened.id,
            "app_id": APP_ID,
            "external_id": view.get("external_id") or "",
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _reactions_add(self, p: _Params) -> dict[str, Any]:
        state = self._channel(p.required("channel") if p.text("channel") else None)
        ts, name = p.text("timestamp") or "", (p.text("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        if ts not in state.messages and (state.id, ts) not in self._user_messages:
            raise SlackError("message_not_found")
        if any(r.channel == state.id and r.ts == ts and r.name == name for r in self._reactions):
            raise SlackError("already_reacted")
        self._reactions.append(Reaction(state.id, ts, name, BOT_USER_ID))
        return {}

    # --- files ------------------------------------------------------------------------------

    def _new_file(self, name: str, title: str | None, mimetype: str | None, user: str) -> _File:
        file_id = f"F{next(self._ids):010d}"
        mime = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        f = _File(file_id, name, title, mime, user, int(time.time()))
        self._files[file_id] = f
        return f

    def _file_object(self, f: _File) -> dict[str, Any]:
        base = f"{self.url}/files-pri/{self.team_id}-{f.id}"
        ext = f.name.rsplit(".", 1)[-1].lower() if "." in f.name else "binary"
        quoted = quote(f.name)
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title or f.name,
            "mimetype": f.mimetype,
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": f.user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(f.data) if f.data is not None else (f.length or 0),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": any(c.startswith("C") for c in f.channels),
            "public_url_shared": False,
            "url_private": f"{base}/{quoted}",
            "url_private_download": f"{base}/download/{quoted}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{f.user}/{f.id}/{quoted}",
            "channels": [c for c in f.channels if c.startswith("C")],
            "groups": [c for c in f.channels if c.startswith("G")],
            "ims": [c for c in f.channels if c.startswith("D")],
        }

    def _files_get_upload_url(self, p: _Params) -> dict[str, Any]:
        name = p.required("filename")
        length = p.text("length")
        if not length or not length.isdigit() or int(length) < 1:
            raise SlackError("invalid_arguments")
        f = self._new_file(name, None, None, BOT_USER_ID)
        f.length, f.upload_secret = int(length), uuid.uuid4().hex
        return {"upload_url": f"{self.url}/upload/v1/{f.id}/{f.upload_secret}", "file_id": f.id}

    def _files_complete_upload(self, p: _Params) -> dict[str, Any]:
        entries = p.json("files", "invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments")
        refs = [p.text("channel_id")] if p.text("channel_id") else []
        refs += [c.strip() for c in (p.text("channels") or "").split(",") if c.strip()]
        targets = [self._postable(_Params({"channel": ref})) for ref in refs]
        thread_ts = p.text("thread_ts") or None
        comment = p.text("initial_comment")
        done: list[_File] = []
        for entry in entries:
            f = self._files.get(str(entry.get("id"))) if isinstance(entry, dict) else None
            if f is None or f.user != BOT_USER_ID:
                raise SlackError("file_not_found")
            if f.data is None or f.completed:
                raise SlackError("file_not_found" if f.data is None else "file_deleted")
            f.title = entry.get("title") or f.title
            done.append(f)
        for f in done:
            assert f.data is not None
            f.completed = True
            f.channels = [t.id for t in targets]
            shares: list[_Channel | None] = [*targets] or [None]  # not shared: channel None
            for target in shares:
                self._uploaded.append(
                    SharedFile(
                        id=f.id,
                        name=f.name,
                        title=f.title,
                        size=len(f.data),
                        sha256=hashlib.sha256(f.data).hexdigest(),
                        mimetype=f.mimetype,
                        channel=target.id if target else None,
                        thread_ts=thread_ts,
                        initial_comment=comment,
                        data=f.data,
                    )
                )
        for target in targets:
            post = Posted(
                channel=target.id,
                ts=self._next_ts(),
                text=comment or "",
                blocks=None,
                thread_ts=thread_ts,
                kind="file",
                files=[self._file_object(f) for f in done],
                at=time.monotonic(),
            )
            target.messages[post.ts] = post
        return {"files": [self._file_object(f) for f in done]}

    def _files_info(self, p: _Params) -> dict[str, Any]:
        f = self._files.get(p.text("file") or "")
        if f is None or f.data is None:
            raise SlackError("file_not_found")
        return {
            "file": self._file_object(f),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    # --- Socket Mode ------------------------------------------------------------------------

    def _connections_open(self) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {
            "ok": True,
            "url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={APP_ID}",
        }

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            ticket = request.query.get("ticket", "")
            if ticket not in self._tickets:
                return web.Response(status=401, text="invalid ticket")
            self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._sockets.append(ws)
            count = len(self._sockets)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": count,
                    "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        ack = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(ack, dict) and "envelope_id" in ack:
                        with self._lock:
                            self._acks.append(ack)
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
        finally:
            with self._lock:
                if ws in self._sockets:
                    self._sockets.remove(ws)
        return ws

    @property
    def socket_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    def socket_push(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> str:
        """Sends an envelope ("events_api", "slash_commands", "interactive") on the newest
        Socket Mode connection; returns its envelope_id (its ack shows up in `acks`)."""
        with self._lock:
            if not self._sockets:
                raise RuntimeError("no Socket Mode connection")
            ws = self._sockets[-1]
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(ws.send_json(envelope), self._loop).result(timeout=5)
        return envelope_id

    def refuse_connections(self, error: str | None = "internal_error") -> None:
        """apps.connections.open answers `error` from now on (None: opens them again)."""
        with self._lock:
            self._refusing = error

    def drop_sockets(self) -> int:
        """Closes every Socket Mode connection from Slack's side (as a Slack restart does);
        returns how many there were."""
        with self._lock:
            sockets = list(self._sockets)
        assert self._loop is not None
        for ws in sockets:
            asyncio.run_coroutine_threadsafe(ws.close(), self._loop).result(timeout=5)
        return len(sockets)


# --- signed requests into Pinwall -----------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: v0= + hex HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackRequests:
    """What Slack POSTs to an app's Request URL, signed, sent with httpx."""

    def __init__(
        self,
        url: str,
        signing_secret: str = SIGNING_SECRET,
        team_id: str = TEAM_ID,
        *,
        team_domain: str = TEAM_DOMAIN,
        api_app_id: str = APP_ID,
        bot_user_id: str = BOT_USER_ID,
        fake: FakeSlack | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.fake = fake
        self.timeout = timeout
        self._counter = itertools.count(1)
        self._last_ts_us = 0
        self.sent: list[tuple[dict[str, str], bytes]] = []
        # Interactivity payloads as Socket Mode envelopes ("interactive") on the fake's
        # connection instead of signed POSTs; the ack's payload is the answer's body.
        self.socket = False
        # One HTTP client for every request when set (a load generator keeps one: a new
        # client builds an SSL context, which costs more than the request).
        self.client: httpx.AsyncClient | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def _ts(self) -> str:
        us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _trigger_id(self, user_id: str = "") -> str:
        n = next(self._counter)
        trigger = f"{int(time.time())}{n:04d}.{self.team_id[1:]}.{uuid.uuid4().hex}"
        if self.fake is not None:
            self.fake.issue_trigger(trigger, user_id)
        return trigger

    def _response_url(self) -> str:
        return (
            f"https://hooks.slack.com/actions/{self.team_id}/{next(self._counter)}"
            f"/{uuid.uuid4().hex[:24]}"
        )

    def headers(
        self,
        body: bytes,
        content_type: str,
        *,
        bad_signature: bool = False,
        timestamp_offset: int = 0,
    ) -> dict[str, str]:
        timestamp = str(int(time.time()) + timestamp_offset)
        secret = self.signing_secret + ("-wrong" if bad_signature else "")
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(secret, timestamp, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        bad_signature: bool = False,
        timestamp_offset: int = 0,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        headers = self.headers(
            body, content_type, bad_signature=bad_signature, timestamp_offset=timestamp_offset
        )
        headers.update(extra_headers or {})
        self.sent.append((headers, body))
        if self.client is not None:
            return await self.client.post(self.url, content=body, headers=headers)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return await client.post(self.url, content=body, headers=headers)

    async def _form(self, fields: Mapping[str, str], **options: Any) -> httpx.Response:
        body = urlencode(fields).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **options)

    async def _payload(self, payload: dict[str, Any], **options: Any) -> httpx.Response:
        if self.socket:
            return await self._envelope(payload)
        return await self._form({"payload": json.dumps(payload)}, **options)

    async def _envelope(self, payload: dict[str, Any]) -> httpx.Response:
        """Sends the payload over Socket Mode and waits for its ack: 200 with the ack's
        payload as JSON (empty when it has none), as the HTTP answer would be."""
        if self.fake is None:
            raise AssertionError("Socket Mode needs the fake")
        fake = self.fake
        envelope = await asyncio.to_thread(
            fake.socket_push, "interactive", payload, accepts_response_payload=True
        )
        self.sent.append(({"envelope_id": envelope}, json.dumps(payload).encode()))

        def acked() -> list[dict[str, Any]]:
            return [a for a in fake.acks if a.get("envelope_id") == envelope]

        await fake.wait_for_async(lambda: bool(acked()), self.timeout, what="the ack")
        body = acked()[0].get("payload")
        return httpx.Response(200, json=body) if body else httpx.Response(200)

    def _user(self, user_id: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": self.team_id,
        }

    def _team(self) -> dict[str, Any]:
        return {"id": self.team_id, "domain": self.team_domain}

    # --- interactivity ----------------------------------------------------------------------

    async def slash_command(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        command: str = "/pinwall",
        channel_name: str = "general",
        user_name: str | None = None,
        **options: Any,
    ) -> httpx.Response:
        fields = {
            "token": "verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": "directmessage" if channel_id.startswith("D") else channel_name,
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(),
            "trigger_id": self._trigger_id(user_id),
        }
        return await self._form(fields, **options)

    def _find_button(
        self, channel_id: str, message_ts: str, action_id: str
    ) -> tuple[dict[str, Any] | None, str, dict[str, Any]]:
        """(the message as Slack has it, block_id, button) from the fake, when it has one."""
        message = None
        if self.fake is not None:
            for post in self.fake.messages_in(channel_id) + self.fake.ephemerals:
                if post.ts == message_ts and post.channel == channel_id:
                    with self.fake._lock:
                        message = self.fake._message_object(post)
                    break
        for block in (message or {}).get("blocks") or []:
            elements = list(block.get("elements") or [])
            if block.get("accessory"):
                elements.append(block["accessory"])
            for el in elements:
                if isinstance(el, dict) and el.get("action_id") == action_id:
                    return message, str(block.get("block_id") or uuid.uuid4().hex[:5]), el
        return message, uuid.uuid4().hex[:5], {}

    def _action(
        self, action_id: str, value: str, block_id: str, el: dict[str, Any]
    ) -> dict[str, Any]:
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "text": el.get("text") or {"type": "plain_text", "text": "Button", "emoji": True},
            "value": value,
            "type": "button",
            "action_ts": self._ts(),
        }
        if el.get("style"):
            action["style"] = el["style"]
        return action

    async def block_action(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value: str,
        *,
        container_type: Literal["message", "ephemeral"] = "message",
        **options: Any,
    ) -> httpx.Response:
        message, block_id, el = self._find_button(channel_id, message_ts, action_id)
        ephemeral = container_type == "ephemeral"
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": self._trigger_id(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {
                "id": channel_id,
                "name": "directmessage" if channel_id.startswith("D") else "general",
            },
            "state": {"values": {}},
            "response_url": self._response_url(),
            "actions": [self._action(action_id, value, block_id, el)],
        }
        if not ephemeral:
            payload["message"] = message or {
                "type": "message",
                "user": self.bot_user_id,
                "bot_id": BOT_ID,
                "ts": message_ts,
                "text": "",
                "team": self.team_id,
            }
        return await self._payload(payload, **options)

    async def home_action(
        self, user_id: str, action_id: str, value: str, **options: Any
    ) -> httpx.Response:
        view: dict[str, Any] = {"type": "home", "blocks": []}
        if self.fake is not None:
            view = self.fake.home_views.get(user_id, view)
        block_id, el = uuid.uuid4().hex[:5], {}
        for block in view.get("blocks") or []:
            for candidate in [*(block.get("elements") or []), block.get("accessory") or {}]:
                if isinstance(candidate, dict) and candidate.get("action_id") == action_id:
                    block_id, el = str(block.get("block_id") or block_id), candidate
        view_id = f"V{abs(hash(user_id)) % 10**10:010d}"
        payload = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "verification-token",
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": self._trigger_id(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "view": {
                "id": view_id,
                "team_id": self.team_id,
                "app_id": self.api_app_id,
                "bot_id": BOT_ID,
                "state": {"values": {}},
                **view,
            },
            "actions": [self._action(action_id, value, block_id, el)],
        }
        return await self._payload(payload, **options)

    async def home_select(
        self, user_id: str, action_id: str, option_value: str, **options: Any
    ) -> httpx.Response:
        """The person picks the option `option_value` of the App Home's select `action_id`
        (as published with views.publish), as Slack sends it: a block_actions payload
        with the chosen option."""
        if self.fake is None:
            raise AssertionError("home_select needs the fake that holds the App Home")
        view = self.fake.home_views.get(user_id) or {}
        found: tuple[str, dict[str, Any]] | None = None
        for block in view.get("blocks") or []:
            for el in [*(block.get("elements") or []), block.get("accessory") or {}]:
                if isinstance(el, dict) and el.get("action_id") == action_id:
                    found = (str(block.get("block_id") or uuid.uuid4().hex[:5]), el)
        if found is None:
            raise AssertionError(f"no select {action_id!r} on the App Home of {user_id}")
        block_id, el = found
        chosen = [o for o in el.get("options") or [] if o.get("value") == option_value]
        if not chosen:
            raise AssertionError(f"no option {option_value!r} in {action_id!r}")
        view_id = f"V{abs(hash(user_id)) % 10**10:010d}"
        action = {
            "type": "static_select",
            "action_id": action_id,
            "block_id": block_id,
            "selected_option": chosen[0],
            "placeholder": el.get("placeholder"),
            "action_ts": self._ts(),
        }
        payload = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "verification-token",
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": self._trigger_id(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "view": {"id": view_id, "team_id": self.team_id, "state": {"values": {}}, **view},
            "actions": [action],
        }
        return await self._payload(payload, **options)

    async def view_submission(
        self,
        user_id: str,
        values: str | Mapping[str, str],
        *,
        view_id: str | None = None,
        allow_closed: bool = False,
        **options: Any,
    ) -> httpx.Response:
        """The person submits the newest open modal opened for them (or `view_id`), typing
        `values` (one text for every input, or block_id -> text; for a select, the value
        of the option chosen, else the preselected one). The modal closes when
        the app answers without `response_action`, as in Slack; `allow_closed` sends a
        closed one again (a double click on Submit that got through twice)."""
        if self.fake is None:
            raise AssertionError("view_submission needs the fake that opened the modal")
        opened = [
            v
            for v in self.fake.views
            if (allow_closed or not v.closed)
            and (v.id == view_id if view_id else v.user == user_id)
        ]
        if not opened:
            raise AssertionError(f"no open modal for {user_id} in {self.fake.views}")
        view = opened[-1]
        state: dict[str, Any] = {}
        for block in view.view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            block_id = str(block.get("block_id"))
            element = block.get("element") or {}
            if element.get("type") == "static_select":
                # `values` names the option's value; none named: the one preselected.
                wanted = None if isinstance(values, str) else values.get(block_id)
                offered = list(element.get("options") or [])
                for group in element.get("option_groups") or []:
                    offered += group.get("options") or []
                chosen = next(
                    (o for o in offered if o.get("value") == wanted),
                    element.get("initial_option") if wanted is None else None,
                )
                if chosen is None and not block.get("optional"):
                    raise AssertionError(f"Slack does not submit a modal with {block_id} empty")
                state[block_id] = {
                    str(element.get("action_id")): {
                        "type": "static_select",
                        "selected_option": chosen,
                    }
                }
                continue
            typed = values if isinstance(values, str) else values.get(block_id, "")
            if not typed and not block.get("optional"):
                raise AssertionError(f"Slack does not submit a modal with {block_id} empty")
            picked = {
                "datetimepicker": "selected_date_time",  # Unix seconds
                "datepicker": "selected_date",  # YYYY-MM-DD
                "timepicker": "selected_time",  # HH:mm
            }.get(str(element.get("type")))
            if picked is not None:
                moment: Any = int(typed) if typed and picked == "selected_date_time" else typed
                state[block_id] = {
                    str(element.get("action_id")): {
                        "type": element.get("type"),
                        picked: moment or None,
                    }
                }
                continue
            state[block_id] = {
                str(element.get("action_id")): {
                    "type": element.get("type", "plain_text_input"),
                    "value": typed or None,
                }
            }
        with self.fake._lock:
            shown = self.fake._view_object(view)
        shown["state"] = {"values": state}
        payload = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "verification-token",
            "trigger_id": self._trigger_id(user_id),
            "view": shown,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        answer = await self._payload(payload, **options)
        if answer.status_code == 200 and not (answer.content and "response_action" in answer.text):
            self.fake.close_view(view.id)
        return answer

    async def message_shortcut(
        self,
        user_id: str,
        channel_id: str,
        message: dict[str, Any],
        callback_id: str = "share_to_pinwall",
        **options: Any,
    ) -> httpx.Response:
        payload = {
            "type": "message_action",
            "token": "verification-token",
            "action_ts": self._ts(),
            "team": self._team(),
            "user": self._user(user_id),
            "channel": {
                "id": channel_id,
                "name": "directmessage" if channel_id.startswith("D") else "general",
            },
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger_id(user_id),
            "response_url": self._response_url(),
            "message_ts": message.get("ts"),
            "message": message,
        }
        return await self._payload(payload, **options)

    # --- Events API -------------------------------------------------------------------------

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        **options: Any,
    ) -> httpx.Response:
        body = {
            "token": "verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._counter):04d}{uuid.uuid4().hex[:6].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + uuid.uuid4().hex,
        }
        extra = dict(options.pop("extra_headers", None) or {})
        if retry_num is not None:
            extra["X-Slack-Retry-Num"] = str(retry_num)
            extra["X-Slack-Retry-Reason"] = retry_reason
        return await self.post(
            json.dumps(body).encode(), "application/json", extra_headers=extra, **options
        )

    async def url_verification(self, challenge: str, **options: Any) -> httpx.Response:
        body = {"token": "verification-token", "challenge": challenge, "type": "url_verification"}
        return await self.post(json.dumps(body).encode(), "application/json", **options)

    def message_event(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        channel_type: str = "im",
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        ts = ts or self._ts()
        event: dict[str, Any] = {
            "type": "message",
            "user": user_id,
            "text": text,
            "ts": ts,
            "team": self.team_id,
            "client_msg_id": str(uuid.uuid4()),
            "channel": channel_id,
            "event_ts": ts,
            "channel_type": channel_type,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
            event["parent_user_id"] = user_id
        if self.fake is not None:
            self.fake.user_wrote(channel_id, ts)
        if files:
            event["subtype"] = "file_share"
            event["files"] = files
            event["upload"] = False
            event["display_as_bot"] = False
        return event

    def app_mention(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An app_mention; the bot's mention is put in front of text unless already there."""
        mention = f"<@{self.bot_user_id}>"
        if mention not in text:
            text = f"{mention} {text}"
        event = self.message_event(
            user_id, channel_id, text, ts=ts, thread_ts=thread_ts, files=files
        )
        event["type"] = "app_mention"
        event.pop("channel_type", None)
        event.pop("subtype", None)
        return event

    def reaction_added(
        self,
        user_id: str,
        reaction: str,
        channel_id: str,
        ts: str,
        *,
        item_user: str = BOT_USER_ID,
    ) -> dict[str, Any]:
        return {
            "type": "reaction_added",
            "user": user_id,
            "reaction": reaction,
            "item": {"type": "message", "channel": channel_id, "ts": ts},
            "item_user": item_user,
            "event_ts": self._ts(),
        }

    def app_home_opened(self, user_id: str, *, channel_id: str | None = None) -> dict[str, Any]:
        if channel_id is None:
            channel_id = self.fake.dm_channel(user_id) if self.fake else "D" + user_id[1:]
        return {
            "type": "app_home_opened",
            "user": user_id,
            "channel": channel_id,
            "tab": "home",
            "event_ts": self._ts(),
        }

    def user_change(self, user: dict[str, Any]) -> dict[str, Any]:
        ts = self._ts()
        return {"type": "user_change", "user": user, "cache_ts": int(float(ts)), "event_ts": ts}
