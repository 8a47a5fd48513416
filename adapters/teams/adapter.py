"""The Teams adapter's I/O, on the Teams SDK's parts (microsoft-teams-apps/-api) inside
Pinwall's own Starlette app: no second web server.

Receiving: POST /teams/messages. The request's Bot Framework JWT is checked first (the
SDK's TokenValidator against the keys the OpenID metadata names; issuer, audience =
the bot's app id, expiry, and the token's serviceurl = the activity's); a request
without a valid token gets 401 and is logged. Then the activity is recorded (the
inbox) before Teams gets its answer, and applied afterwards by a background task.

Sending: through the conversation's serviceUrl (kept per conversation, as other
adapters keep their chat ids: the personal chat in direct_chats, the service URL in a
cursor) with the SDK's ApiClient: proactive messages for DMs and fan-out (a personal
chat not known yet is created with POST /v3/conversations), cards updated in place
(PUT), a 429 reported with its Retry-After for the delivery worker to honour.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from microsoft_teams.api.activities.message import MessageActivityInput
from microsoft_teams.api.clients.conversation import ConversationClient, CreateConversationParams
from microsoft_teams.api.models import Account
from microsoft_teams.common import ClientOptions
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.teams import files, inbound, render
from adapters.teams.auth import BotToken, CredentialsRefused, jwks_uri, validator
from bot.errors import ConfigError
from bot.i18n import Translator, normalize_language
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

PLATFORM = "teams"
MESSAGES_PATH = "/teams/messages"
MAX_BODY = 1_000_000  # bytes; Bot Framework activities are far smaller
SERVICE = "teams:service:"  # cursor name prefix: a conversation's serviceUrl
DEFAULT_SERVICE = "teams:service"  # the newest serviceUrl seen: where new chats are made
FILE_LINK_TTL = timedelta(days=7)  # how long a file's download link in a message works


class TeamsAdapter:
    platform = PLATFORM
    capabilities = Capabilities(
        buttons=True, reactions=True, html=False, edits=True, threads=True, max_text=20_000
    )
    command_prefix = ""  # typed without "/" in personal chat, after @Pinwall elsewhere

    def __init__(
        self,
        hub: Hub,
        *,
        app_id: str,
        password: str,
        tenant_id: str,
        openid_url: str,
        token_url: str,
    ) -> None:
        self.hub = hub
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.openid_url = openid_url
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=10.0))
        self.token = BotToken(self.http, token_url, app_id, password)
        self._validator: Any = None
        self._validating = threading.Lock()
        self._clients: dict[str, ConversationClient] = {}
        self._services: dict[str, str] = {}  # conversation -> serviceUrl
        self._trusted_hosts: set[str] = set()
        self._roles: dict[str, str] = {}  # Teams user -> userRole ("user", "guest")
        self._work = asyncio.Event()
        self._stopping = asyncio.Event()
        self._applier: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.token()
        except CredentialsRefused as exc:
            raise ConfigError(
                f"PINWALL_TEAMS_APP_ID / PINWALL_TEAMS_APP_PASSWORD: the token endpoint "
                f"refused them ({exc}); copy the app's client secret again"
            ) from None
        try:
            keys, issuer = await jwks_uri(self.http, self.openid_url)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"PINWALL_TEAMS_OPENID_URL: cannot read the Bot Framework's OpenID metadata "
                f"at {self.openid_url} ({exc})"
            ) from None
        self._validator = validator(self.app_id, keys, issuer)
        self._stopping.clear()
        self._applier = asyncio.create_task(self._apply_loop(), name="teams-apply")
        log.info("Teams: receiving activities at %s as app %s", MESSAGES_PATH, self.app_id)

    async def stop(self) -> None:
        self._stopping.set()
        self._work.set()
        if self._applier is not None:
            await asyncio.gather(self._applier, return_exceptions=True)
            self._applier = None
        await self.http.aclose()

    def healthy(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        if self._validator is None:
            return "Teams is not started"
        return task_problem(self._applier, "Teams' applying of recorded activities")

    def routes(self) -> list[BaseRoute]:
        return [Route(MESSAGES_PATH, self._messages, methods=["POST"])]

    # --- inbound ------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        peer = request.client.host if request.client else "?"
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token:  # refused before a byte of the body is read
            log.warning("Teams: refused a request without a Bot Framework token from %s", peer)
            return PlainTextResponse("unauthorized", status_code=401)
        body = await _capped_body(request)
        if body is None:
            log.warning("Teams: refused a request body over %d bytes from %s", MAX_BODY, peer)
            return PlainTextResponse("too large", status_code=413)
        try:
            activity = json.loads(body)
        except ValueError:
            activity = None
        service_url = activity.get("serviceUrl") if isinstance(activity, dict) else None
        # An unreadable body has no serviceUrl for the token's to match: refused as well.
        if not isinstance(activity, dict) or not isinstance(service_url, str):
            authentic = False
        else:
            authentic = await self._authentic(token, service_url)
        if not authentic:
            log.warning(
                "Teams: refused a request without a valid Bot Framework token from %s", peer
            )
            return PlainTextResponse("unauthorized", status_code=401)
        assert isinstance(activity, dict)
        assert isinstance(service_url, str)
        # The Azure bot's other channels (Web Chat, Direct Line) are signed the same way,
        # but there the client names the sender: only Teams' own activities, in a tenant.
        if activity.get("channelId") != "msteams" or not inbound.tenant_of(activity):
            log.warning(
                "Teams: refused a %r activity without a tenant or not from Teams (from %s)",
                activity.get("channelId"),
                peer,
            )
            return PlainTextResponse("only Microsoft Teams", status_code=403)
        await self._remember(activity, service_url)
        if inbound.uninstalled(activity):  # removed from their personal chat: no more DMs
            user = str((activity.get("from") or {}).get("id") or "")
            await self.hub.call(self.hub.core.account_unreachable, PLATFORM, user)
        if activity.get("type") == "invoke" and activity.get("name") == "fileConsent/invoke":
            await self._file_consent(activity, service_url)
            return self._answer(activity)
        found = inbound.translate(activity, self.app_id, self.tenant_id)
        if found is not None:
            try:
                where = str((activity.get("conversation") or {}).get("id") or "")
                found = await self._guests_are_externals(found, service_url, where)
            except (httpx.HTTPError, CredentialsRefused) as exc:
                # Not recorded: Teams sends the activity again; nobody is let in unchecked.
                log.warning("Teams: the roster did not answer (%s); activity not taken", exc)
                return PlainTextResponse("roster unavailable", status_code=503)
            attachments = [
                await files.fetch(self.http, self.hub.blobs, w, self._trusted_hosts)
                for w in found.files
            ]
            await self.hub.record(found.event(attachments))
            self._work.set()
        return self._answer(activity)

    async def _guests_are_externals(
        self, found: inbound.Inbound, service_url: str, conversation: str
    ) -> inbound.Inbound:
        """A guest account of the company's tenant, or someone whose account is another
        tenant's (in a shared channel), is an external: the activity does not say it, the
        conversation's roster does (userRole, tenantId)."""
        actor = found.meta.actor
        if actor.trust != "member":
            return found
        role = self._roles.get(actor.external_id)
        if role is None:
            where, _root = inbound.base_conversation(conversation)
            member = await self._client(service_url).get_member_by_id(where, actor.external_id)
            role = str(member.user_role or "user").lower()
            home = getattr(member, "tenant_id", None)
            if home and home != self.tenant_id:  # from another tenant (a shared channel)
                role = "guest"
            self._roles[actor.external_id] = role
        if role != "guest":
            return found
        meta = replace(found.meta, actor=replace(actor, trust="external"))
        return replace(found, meta=meta)

    async def _authentic(self, token: str, service_url: object) -> bool:
        if not token or not isinstance(service_url, str) or self._validator is None:
            return False
        try:
            # The SDK's validator fetches the keys with PyJWKClient (blocking urllib, cached
            # for five minutes): off the event loop, one check at a time.
            await asyncio.to_thread(self._validate, token, service_url)
        except jwt.PyJWTError as exc:
            log.warning("Teams: JWT refused: %s", exc)
            return False
        return True

    def _validate(self, token: str, service_url: str) -> None:
        with self._validating:
            asyncio.run(self._validator.validate_token(token, service_url=service_url))

    @staticmethod
    def _answer(activity: dict[str, Any]) -> Response:
        """The invoke response Teams waits for (the card's or the dialog's), else 200."""
        if activity.get("type") != "invoke":
            return Response(status_code=200)
        if activity.get("name") == "adaptiveCard/action":
            return JSONResponse(
                {
                    "statusCode": 200,
                    "type": "application/vnd.microsoft.activity.message",
                    "value": "✓",
                }
            )
        return JSONResponse({})  # composeExtension/submitAction: the dialog closes

    async def _remember(self, activity: dict[str, Any], service_url: str) -> None:
        """The conversation reference: where to send to this conversation (and, for a
        personal chat, to this person) later, proactively."""
        conversation = str((activity.get("conversation") or {}).get("id") or "")
        base, _root = inbound.base_conversation(conversation)
        host = urlsplit(service_url).hostname
        if host:
            self._trusted_hosts.add(host.lower())
        if not base or self._services.get(base) == service_url:
            return
        self._services[base] = service_url
        await self.hub.state.set_cursor(SERVICE + base, service_url)
        await self.hub.state.set_cursor(DEFAULT_SERVICE, service_url)
        user = str((activity.get("from") or {}).get("id") or "")
        if inbound.is_direct(activity) and user and user != self.app_id:
            await self.hub.state.add_direct_chat(PLATFORM, base, user)

    async def _apply_loop(self) -> None:
        while not self._stopping.is_set():
            await self._work.wait()
            self._work.clear()
            try:
                await self.hub.apply_recorded()
            except Exception:
                log.exception("Teams: applying recorded activities failed; trying again")
                await asyncio.sleep(1.0)
                self._work.set()

    # --- outbound -----------------------------------------------------------------

    async def _service(self, conversation: str) -> str | None:
        known = self._services.get(conversation)
        if known is None:
            known = await self.hub.state.cursor(SERVICE + conversation)
            if known is None:
                known = await self.hub.state.cursor(DEFAULT_SERVICE)
            if known is not None:
                self._services[conversation] = known
        return known

    def _client(self, service_url: str) -> ConversationClient:
        """The SDK's Bot Connector client (conversations, activities) for a serviceUrl."""
        client = self._clients.get(service_url)
        if client is None:
            options = ClientOptions(token=self.token, timeout=20.0)
            client = ConversationClient(service_url, options)
            self._clients[service_url] = client
        return client

    async def _conversation(self, target: Target) -> tuple[str, str] | None:
        """The conversation id and its serviceUrl; a personal chat is created (Teams
        answers with the existing one where there is one) if none is known."""
        if target.kind == "room":
            service = await self._service(target.address)
            return (target.address, service) if service else None
        known = await self.hub.state.newest_direct_chat(PLATFORM, target.address)
        if known is not None:
            service = await self._service(known)
            if service:
                return known, service
        service = await self.hub.state.cursor(DEFAULT_SERVICE)
        if service is None:
            return None
        params = CreateConversationParams(
            members=[Account(id=target.address)],
            tenantId=self.tenant_id,
            channelData={"tenant": {"id": self.tenant_id}},
        )
        created = await self._client(service).create(params)
        await self.hub.state.add_direct_chat(PLATFORM, created.id, target.address)
        await self.hub.state.set_cursor(SERVICE + created.id, service)
        self._services[created.id] = service
        return created.id, service

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        try:
            found = await self._conversation(target)
            if found is None:
                return DeliveryFailed(
                    "no conversation reference: Pinwall was never written to there", permanent=True
                )
            conversation, service = found
            client = self._client(service)
            raw = render.activity(message, self._file_links(message))
            body = MessageActivityInput.model_validate(raw)
            if message.replaces:
                try:
                    await client.update_activity(conversation, message.replaces, body)
                    return Delivered(message_id=message.replaces, conversation=conversation)
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code not in (400, 403, 404):
                        raise
                    if message.edit_only:
                        return Delivered(conversation=conversation)
            where = conversation
            if message.thread and target.kind == "room":  # a reply in a channel's thread
                where = f"{conversation};messageid={message.thread}"
            sent = await client.create_activity(where, body)
            if target.kind == "dm" and not message.replaces:
                await self._offer_uploads(client, conversation, message)
            return Delivered(message_id=sent.id, conversation=conversation)
        except httpx.HTTPStatusError as exc:
            return self._failure(exc.response, target)
        except CredentialsRefused as exc:
            return DeliveryFailed(f"token: {exc}")
        except (httpx.HTTPError, OSError) as exc:
            return DeliveryFailed(f"{type(exc).__name__}: {exc}")

    def _file_links(self, message: Message) -> dict[str, str]:
        """Signed, expiring download links (Pinwall's /files/...) of the message's files,
        where PINWALL_PUBLIC_URL says where Pinwall is."""
        base = self.hub.core.settings.public_url
        signer, blobs = self.hub.signer, self.hub.blobs
        if not message.files or not base or signer is None or blobs is None:
            return {}
        now = self.hub.clock.now()
        return {
            f.blob_id: signer.file_url(base, f.blob_id, f.name, now=now, ttl=FILE_LINK_TTL)
            for f in message.files
            if blobs.exists(f.blob_id)
        }

    async def _offer_uploads(
        self, client: ConversationClient, conversation: str, message: Message
    ) -> None:
        """Each file of a message to a personal chat offered for upload into the person's
        OneDrive as well: a consent card of its own after the message (which has the
        file's link already, so a card that fails to go is only logged)."""
        signer, blobs = self.hub.signer, self.hub.blobs
        if not message.files or signer is None or blobs is None:
            return
        now = self.hub.clock.now().timestamp()
        for f in message.files:
            if not blobs.exists(f.blob_id):
                continue
            size = blobs.path(f.blob_id).stat().st_size
            card = files.consent_card(signer, f.blob_id, f.name, size, now)
            offer = MessageActivityInput.model_validate(files.consent_activity(card))
            try:
                await client.create_activity(conversation, offer)
            except httpx.HTTPError as exc:
                log.warning("Teams: the consent card of %s was not sent (%s)", f.name, exc)

    async def _file_consent(self, activity: dict[str, Any], service_url: str) -> None:
        """fileConsent/invoke: on "Allow" the file's bytes go to the upload URL Teams gave
        and the file info card shows it in the chat; the consent card is replaced in place
        by what came of it (uploaded, or not sent on "Decline")."""
        value = activity.get("value") or {}
        signer, blobs = self.hub.signer, self.hub.blobs
        if not isinstance(value, dict) or signer is None or blobs is None:
            return
        found = files.offered(signer, value.get("context"), self.hub.clock.now())
        if found is None or not blobs.exists(found[0]):
            log.warning("Teams: a file consent for no file Pinwall offered; nothing uploaded")
            return
        blob_id, name = found
        conversation = str((activity.get("conversation") or {}).get("id") or "")
        client = self._client(service_url)
        accepted = value.get("action") == "accept"
        if accepted:
            info = value.get("uploadInfo") or {}
            url = str(info.get("uploadUrl") or "") if isinstance(info, dict) else ""
            source = blobs.path(blob_id)
            if not await files.upload(self.http, url, source, self._trusted_hosts):
                return  # the card stays: the person may try again
            name = name or str(info.get("name") or "")
            card = MessageActivityInput.model_validate(files.file_card(info))
            try:
                await client.create_activity(conversation, card)
            except (httpx.HTTPError, CredentialsRefused) as exc:
                log.warning("Teams: the file card after an upload failed (%s)", exc)
        asked = str(activity.get("replyToId") or "")
        if not asked:
            return
        user = str((activity.get("from") or {}).get("id") or "")
        language = await self.hub.state.language_of(PLATFORM, user)
        language = language or normalize_language(str(activity.get("locale") or ""))
        t = Translator(language or self.hub.core.settings.default_language)
        shown = MessageActivityInput.model_validate(files.answered(t, name, uploaded=accepted))
        try:
            await client.update_activity(conversation, asked, shown)
        except (httpx.HTTPError, CredentialsRefused) as exc:
            log.warning("Teams: the answered consent card was not replaced (%s)", exc)

    def _failure(self, response: httpx.Response, target: Target) -> SendResult:
        status = response.status_code
        if status == 429:
            return RateLimited(retry_after=retry_after(response.headers.get("retry-after")))
        if status == 401:
            self.token.forget()  # fetched anew for the retry
            return DeliveryFailed("HTTP 401 from the Bot Connector")
        reason = f"HTTP {status}: {response.text[:200]}"
        if status in (403, 404):  # the bot was removed, the person left the tenant
            return DeliveryFailed(reason, permanent=True, unreachable=target.kind == "dm")
        return DeliveryFailed(reason, permanent=400 <= status < 500)


def retry_after(value: str | None) -> float:
    try:
        return max(float(value or 1), 0.0)
    except ValueError:
        return 1.0


async def _capped_body(request: Request) -> bytes | None:
    """The request's body, read no further than MAX_BODY bytes; None when it is longer
    (a declared Content-Length says so before anything is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)
