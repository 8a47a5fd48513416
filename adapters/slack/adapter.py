"""The Slack adapter's I/O: slack-bolt (async) in Socket Mode or over HTTP, the Web API.

Every Slack request is recorded before Slack is acknowledged and applied afterwards:
the Bolt app runs with `process_before_response`, so its answer (the ack) leaves only
when the listener returns — and the listeners only translate and record. A background
task applies what was recorded. Slack's retries of an event (X-Slack-Retry-Num) carry
the same event id, which the inbox knows: they take effect once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from dataclasses import replace
from typing import Any, Literal

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.slack import inbound
from adapters.slack.files import Downloads, NotYet
from adapters.slack.forms import SlackForms
from adapters.slack.inbound import SHARE_SHORTCUT, Inbound, SlackUser, user_from_info
from adapters.slack.modals import (
    PROPOSE_CALLBACK,
    SETTINGS_CALLBACK,
    SHARE_CALLBACK,
    form_submission,
    said,
    settings_commands,
    share_errors,
    share_submission,
)
from adapters.slack.render import (
    ACTION_PREFIX,
    REASON_BLOCK,
    REASON_CALLBACK,
    blocks,
    fallback,
    home_view,
)
from bot.errors import ConfigError
from bot.home import home_of
from bot.i18n import Translator
from bot.markup import to_plain
from bot.message import (
    Capabilities,
    Delivered,
    DeliveryFailed,
    Message,
    RateLimited,
    SendResult,
    Target,
)
from bot.ports import task_problem
from bot.runtime import Hub

log = logging.getLogger(__name__)

PLATFORM = "slack"
FORMS = (("propose", ""), ("settings", ""))  # bare commands Slack answers with a modal
EVENTS_PATH = "/slack/events"
MAX_BODY = 1_000_000  # bytes; Slack's events and interactions are far smaller
USER_TTL = 600.0  # seconds a users.info answer is trusted
# Errors after which sending to that conversation again is pointless.
_GONE = {
    "channel_not_found",
    "is_archived",
    "not_in_channel",
    "user_not_found",
    "user_disabled",
    "account_inactive",
    "cannot_dm_bot",
    "messages_tab_disabled",
}
_PERMANENT = _GONE | {"invalid_blocks", "msg_too_long", "no_text", "invalid_arguments"}


class SlackAdapter(SlackForms):
    platform = PLATFORM
    capabilities = Capabilities(
        buttons=True, reactions=True, html=False, edits=True, threads=True, max_text=3000
    )
    command_prefix = "/pinwall "

    def __init__(
        self,
        hub: Hub,
        *,
        bot_token: str,
        app_token: str | None = None,
        signing_secret: str | None = None,
        mode: Literal["socket", "http"] = "socket",
        api_url: str = "https://slack.com/api/",
        command: str = "/pinwall",
        max_download: int | None = None,
        trust_profile_email: bool = False,
    ) -> None:
        self.trust_profile_email = trust_profile_email
        if mode == "http" and not signing_secret:
            raise ConfigError(
                "PINWALL_SLACK_SIGNING_SECRET: HTTP mode needs the app's signing secret "
                "(Basic Information → App Credentials)"
            )
        if mode == "socket" and not app_token:
            raise ConfigError(
                "PINWALL_SLACK_APP_TOKEN: Socket Mode needs an app-level token (xapp-...) "
                "with connections:write, or set PINWALL_SLACK_MODE=http"
            )
        self.hub = hub
        self.mode = mode
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.bot_token = bot_token
        self.app_token = app_token
        self._signing_secret = signing_secret
        self.max_download = max_download
        self.client = AsyncWebClient(token=bot_token, base_url=self.api_url)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or "socket-mode",
            request_verification_enabled=mode == "http",
            process_before_response=True,  # the ack leaves after the event is recorded
            logger=logging.getLogger("pinwall.slack.bolt"),
        )
        self.bot_user_id = ""
        self.team_id = ""
        self._socket: Any = None
        self._users: dict[str, tuple[float, SlackUser]] = {}
        self._dm_channels: dict[str, str] = {}
        self.files = Downloads(hub.blobs, self.api_url, bot_token, max_download)
        self._work = asyncio.Event()
        self._stopping = asyncio.Event()
        self._applier: asyncio.Task[None] | None = None
        self._homes: set[str] = set()  # people whose App Home to publish after applying
        # People whose App Home lists proposals (gatekeepers, admins): published again
        # when a card is sent or updated, so that it shows what waits and what was decided.
        self._deciders: set[str] = set()
        # Signs the press carried through a reason modal (private_metadata).
        self._modal_key = hashlib.sha256(b"pinwall-slack-modal:" + bot_token.encode()).digest()
        self._register(command)

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            raise ConfigError(
                f"PINWALL_SLACK_BOT_TOKEN: Slack does not accept this token "
                f"({exc.response.get('error')}); copy the Bot User OAuth Token (xoxb-...) again"
            ) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ConfigError(
                f"PINWALL_SLACK_API_URL: cannot reach Slack at {self.api_url} ({exc})"
            ) from None
        self.bot_user_id = str(auth.get("user_id") or "")
        self.team_id = str(auth.get("team_id") or "")
        self._stopping.clear()
        self._applier = asyncio.create_task(self._apply_loop(), name="slack-apply")
        if self.mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.app, self.app_token)
            await self._socket.connect_async()
            log.info("Slack: connected in Socket Mode as %s", auth.get("user"))
        else:
            log.info("Slack: receiving requests at %s as %s", EVENTS_PATH, auth.get("user"))

    async def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        self._stopping.set()
        self._work.set()
        if self._applier is not None:
            # A loop that ended of itself (see problem()) is over already: nothing to raise.
            await asyncio.gather(self._applier, return_exceptions=True)
            self._applier = None
        self.files.cancel()

    def healthy(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """Why Slack's requests do not come in or are not applied (for /healthz); None
        while they are."""
        if not self.bot_user_id:
            return "Slack is not started"
        stopped = task_problem(self._applier, "Slack's applying of recorded events")
        if stopped is not None:
            return stopped
        if self._socket is not None:
            client = self._socket.client
            session = getattr(client, "current_session", None)
            if session is None or session.closed:
                return "the Socket Mode connection is closed"
            # The SDK's task that reconnects a dropped connection: without it, none would be.
            monitor = getattr(client, "current_session_monitor", None)
            if monitor is not None and monitor.done():
                return task_problem(monitor, "the Socket Mode connection's monitor")
        return None

    def routes(self) -> list[BaseRoute]:
        if self.mode != "http":
            return []
        handler = AsyncSlackRequestHandler(self.app)

        async def events(request: Request) -> Response:
            # Nothing is read of a request that cannot be Slack's: no fresh timestamp or
            # no signature, or a body larger than Slack sends (Bolt checks the rest).
            stamp = request.headers.get("x-slack-request-timestamp", "")
            declared = request.headers.get("content-length", "")
            if (
                not request.headers.get("x-slack-signature")
                or not stamp.isdigit()
                or abs(time.time() - int(stamp)) > inbound.SIGNATURE_WINDOW
            ):
                return PlainTextResponse("invalid request", status_code=401)
            if not declared.isdigit() or int(declared) > MAX_BODY:
                log.warning("refused a Slack request of %s bytes", declared or "unknown")
                return PlainTextResponse("too large", status_code=413)
            body = await request.body()  # kept by the request: Bolt reads it again
            problem = inbound.malformed_body(body, request.headers.get("content-type"))
            if problem is None:
                return await handler.handle(request)
            # Bolt would parse it before checking the signature, and fail with a 500.
            if not self._signed(body, request):
                return PlainTextResponse("invalid request", status_code=401)
            log.warning(
                "refused a signed Slack request with a %s: %s bytes from %s",
                problem,
                len(body),
                request.client.host if request.client else "?",
            )
            return PlainTextResponse("malformed request", status_code=400)

        return [Route(EVENTS_PATH, events, methods=["POST"])]

    def _signed(self, body: bytes, request: Request) -> bool:
        """Whether Slack signed the request (its signing secret, within five minutes)."""
        return self._signing_secret is not None and inbound.signed(
            body,
            request.headers.get("x-slack-request-timestamp", ""),
            request.headers.get("x-slack-signature", ""),
            self._signing_secret,
            now=time.time(),
        )

    # --- inbound ------------------------------------------------------------------

    def _register(self, command: str) -> None:
        app = self.app

        @app.command(command)
        async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
            found = inbound.slash_command(body)
            # `propose` and `settings` alone: a modal with the choices (else the core asks).
            if found.command not in FORMS or not await self._open_form(found):
                await self._take(found)
            await ack()  # nothing to say at once: the answer comes as a message

        @app.view(PROPOSE_CALLBACK)
        async def on_propose_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
            errors = await self._propose(body)
            if errors:  # under the fields; nothing is proposed
                await ack(response_action="errors", errors=errors)
            else:
                await ack()

        @app.view(SETTINGS_CALLBACK)
        async def on_settings_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
            form = form_submission(body, self._modal_key)
            if form is not None:
                user, view_id, data, values = form
                for n, arguments in enumerate(settings_commands(values, data)):
                    await self._take(said(user, f"view:{view_id}:{n}", "settings", arguments))
            await ack()

        @app.event("message")
        async def on_message(body: dict[str, Any]) -> None:
            await self._take(inbound.message_event(body, self.bot_user_id))

        @app.event("app_mention")
        async def on_mention(body: dict[str, Any]) -> None:
            await self._take(inbound.app_mention(body, self.bot_user_id))

        @app.event("reaction_added")
        async def on_reaction(body: dict[str, Any]) -> None:
            await self._take(inbound.reaction_added(body))

        @app.event("app_home_opened")
        async def on_home(body: dict[str, Any]) -> None:
            event = body["event"]
            if event.get("tab", "home") == "home" and event.get("user"):
                self._homes.add(str(event["user"]))
                self._work.set()

        @app.event("user_change")
        async def on_user_change(body: dict[str, Any]) -> None:
            user = body["event"].get("user") or {}
            if not user.get("id"):
                return
            found = user_from_info(user, self.team_id)
            self._users[found.id] = (time.monotonic(), found)
            if found.deleted:  # deactivated: no more deliveries to them
                await self.hub.call(self.hub.core.account_unreachable, PLATFORM, found.id)

        @app.event("reaction_removed")
        async def on_reaction_removed(body: dict[str, Any]) -> None:
            await self._take(inbound.reaction_added(body, removed=True))

        @app.action(re.compile("^" + re.escape(ACTION_PREFIX)))
        async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
            found = inbound.block_action(body)
            # Reject / Request changes: the reason modal opens now (its trigger is valid
            # for 3 s); the submission decides. Where it cannot open, the press is
            # recorded and the core asks by direct message.
            if found is None or not inbound.wants_reason(found) or not await self._ask(found):
                await self._take(found)
            if found is not None and found.home:
                self._homes.add(found.user_id)
            await ack()

        @app.view(REASON_CALLBACK)
        async def on_reason(ack: AsyncAck, body: dict[str, Any]) -> None:
            found = inbound.view_submission(body, self._modal_key)
            if found in ("empty", "empty_comment"):  # only blanks: shown under the field
                user_id = str((body.get("user") or {}).get("id") or "")
                t = Translator(await self._language(user_id))
                await ack(
                    response_action="errors",
                    errors={
                        REASON_BLOCK: to_plain(
                            t("reason_modal.empty")
                            if found == "empty"
                            else t("reason_modal.empty_comment")
                        )
                    },
                )
                return
            if isinstance(found, Inbound):
                await self._take(found)
                if found.home:
                    self._homes.add(found.user_id)
            else:
                log.warning("Slack: a reason modal with unknown or altered metadata, ignored")
            await ack()  # the modal closes; the outcome comes as a message

        @app.shortcut(SHARE_SHORTCUT)
        async def on_share(ack: AsyncAck, body: dict[str, Any]) -> None:
            found = inbound.share_shortcut(body)
            # The modal with the person's groups (the message's files go with it); a
            # person not known yet or a modal that cannot open: the share flow by DM.
            if not await self._open_share(found):
                await self._take(found)
            await ack()

        @app.view(SHARE_CALLBACK)
        async def on_share_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
            submitted = share_submission(body, self._modal_key)
            if submitted is None:
                log.warning("Slack: a share modal with unknown or altered metadata, ignored")
                await ack()
                return
            t = Translator(await self._language(submitted.user_id))
            errors = share_errors(submitted, t)
            if errors:  # shown under the fields; nothing is written
                await ack(response_action="errors", errors=errors)
                return
            arguments = f"{submitted.group} {submitted.text}"
            found = said(submitted.user_id, "view:" + submitted.view_id, "share", arguments)
            await self._take(replace(found, files=submitted.files))
            await ack()  # the modal closes; "Shared as #12" comes as a message

    async def _take(self, found: Inbound | None) -> None:
        """Records one inbound payload; the applier does the work after the ack."""
        if found is None:
            return
        user = await self.user(found.user_id)
        if user is None or user.is_bot or user.deleted:
            return
        attachments = await self.files.fetch_all(found.files)
        await self.hub.record(found.event(user, attachments))
        if found.user_id in self._deciders:  # their next event shows their home anew
            self._homes.add(found.user_id)
        self._work.set()

    async def _apply_loop(self) -> None:
        while not self._stopping.is_set():
            await self._work.wait()
            self._work.clear()
            try:
                await self.hub.apply_recorded()
                homes, self._homes = self._homes, set()
                for user_id in homes:
                    await self.publish_home(user_id)
            except Exception:
                log.exception("Slack: applying recorded events failed; trying again")
                await asyncio.sleep(1.0)
                self._work.set()

    async def user(self, user_id: str) -> SlackUser | None:
        """users.info (with the locale), cached for a while."""
        cached = self._users.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < USER_TTL:
            return cached[1]
        try:
            answer = await self.client.users_info(user=user_id, include_locale=True)
        except SlackApiError as exc:
            if exc.response.get("error") == "user_not_found":
                return None
            raise
        found = user_from_info(answer["user"], self.team_id, self.trust_profile_email)
        self._users[user_id] = (time.monotonic(), found)
        return found

    # --- App Home -----------------------------------------------------------------

    async def publish_home(self, user_id: str) -> None:
        home = await self.hub.call(home_of, self.hub.core, PLATFORM, user_id)
        t = Translator(home.language if home else self.hub.core.settings.default_language)
        if home is None:
            view = {
                "type": "home",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": str(t("home.unknown"))}}
                ],
            }
        else:
            view = home_view(home, t)
        if home is not None and home.decides:
            self._deciders.add(user_id)
        else:
            self._deciders.discard(user_id)
        try:
            await self.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.warning(
                "Slack: App Home of %s not published (%s)", user_id, exc.response.get("error")
            )

    # --- outbound -----------------------------------------------------------------

    async def _channel(self, target: Target) -> str:
        if target.kind == "room":
            return target.address
        channel = self._dm_channels.get(target.address)
        if channel is None:
            opened = await self.client.conversations_open(users=target.address)
            channel = str(opened["channel"]["id"])
            self._dm_channels[target.address] = channel
        return channel

    async def _ack(self, message: Message) -> SendResult | None:
        """ "Saved" as :white_check_mark: under the person's own message (meta "ack": a
        comment written as a thread answer) instead of a message; None without one."""
        ack = message.meta.get("ack")
        if not isinstance(ack, dict) or not ack.get("conversation") or not ack.get("message_id"):
            return None
        channel = str(ack["conversation"])
        try:
            await self.client.reactions_add(
                channel=channel, timestamp=str(ack["message_id"]), name="white_check_mark"
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "already_reacted":
                raise
        return Delivered(conversation=channel)

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        if "proposal" in message.meta:  # an approval card, new or decided
            self._homes |= self._deciders
            if target.kind == "dm":
                self._homes.add(target.address)
            self._work.set()
        try:
            acked = await self._ack(message)
            if acked is not None:
                return acked
            channel = await self._channel(target)
            text, body = fallback(message), blocks(message)
            audience = message.meta.get("audience")
            if message.replaces:
                try:
                    await self.client.chat_update(
                        channel=channel, ts=message.replaces, text=text, blocks=body
                    )
                    return Delivered(message_id=message.replaces, conversation=channel)
                except SlackApiError as exc:
                    if exc.response.get("error") not in (
                        "message_not_found",
                        "cant_update_message",
                        "edit_window_closed",
                    ):
                        raise
                    if message.edit_only:
                        return Delivered(conversation=channel)
            if target.kind == "room" and audience:
                await self.client.chat_postEphemeral(
                    channel=channel, user=str(audience), text=text, blocks=body
                )
                return Delivered(conversation=channel)
            posted = await self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=body,
                thread_ts=message.thread,
                unfurl_links=False,
                unfurl_media=False,
            )
            ts = str(posted["ts"])
            for f in message.files:
                if self.hub.blobs is None or not self.hub.blobs.exists(f.blob_id):
                    continue
                await self.client.files_upload_v2(
                    channel=channel,
                    file=str(self.hub.blobs.path(f.blob_id)),
                    filename=f.name,
                    title=f.name,
                    thread_ts=ts,
                )
            return Delivered(message_id=ts, conversation=channel)
        except SlackApiError as exc:
            return self._failure(exc, target)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return DeliveryFailed(f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _failure(exc: SlackApiError, target: Target) -> SendResult:
        response = exc.response
        if response.status_code == 429:
            retry = (
                response.headers.get("Retry-After") or response.headers.get("retry-after") or "1"
            )
            try:
                return RateLimited(retry_after=float(retry))
            except ValueError:
                return RateLimited(retry_after=1.0)
        error = str(response.get("error") or exc)
        if error in _GONE:
            return DeliveryFailed(error, permanent=True, unreachable=target.kind == "dm")
        return DeliveryFailed(error, permanent=error in _PERMANENT)


__all__ = ["NotYet", "SlackAdapter"]
