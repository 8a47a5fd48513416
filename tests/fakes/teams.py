"""A fake of the Bot Framework as a Teams bot meets it, over real HTTP on 127.0.0.1
(port 0, in a thread): the Bot Connector REST API (POST /v3/conversations, POST and PUT
/v3/conversations/{id}/activities[/{id}]), the tenant's OAuth token endpoint (client
credentials), the OpenID metadata and its JWKS with a test RSA key, and pre-signed file
downloads (SharePoint's downloadUrl). Connector calls without the token it issued get
401; `throttle()` makes the next calls get 429 with a Retry-After, as Teams does past
its limits, and records any call that came before that time was up (`early`).

`TeamsUser` plays Teams itself towards Pinwall: it posts activities to
/teams/messages with a JWT signed by the test key (or a forged one) for the bot.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "00000000-0000-4000-8000-00000000b07a"
PASSWORD = "fake-client-secret"
TENANT = "11111111-2222-4333-8444-555555555555"
ISSUER = "https://api.botframework.com"
ACCESS_TOKEN = "fake-bot-access-token"
KID = "pinwall-test-key"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@functools.cache
def _key(name: str) -> rsa.RSAPrivateKey:
    """The test key ("bot-framework") and a forger's ("forger"), made once, when first used."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Sent:
    method: str  # POST or PUT
    conversation: str
    activity_id: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """Everything a reader sees: the text and the card's text blocks and buttons."""
        parts = [str(self.body.get("text") or "")]
        for a in self.body.get("attachments") or []:
            parts.append(json.dumps(a.get("content"), ensure_ascii=False))
        return "\n".join(parts)

    def card(self) -> dict[str, Any]:
        [attachment] = [
            a
            for a in self.body["attachments"]
            if a["contentType"] == "application/vnd.microsoft.card.adaptive"
        ]
        content: dict[str, Any] = attachment["content"]
        return content


@dataclass
class FakeTeams:
    errors: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)  # POST /v3/conversations
    token_requests: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    early: list[str] = field(default_factory=list)
    throttled: int = 0
    guests: set[str] = field(default_factory=set)  # Teams users whose userRole is "guest"
    roster_requests: list[str] = field(default_factory=list)
    tenants: dict[str, str] = field(default_factory=dict)  # a user's home tenant, if not ours
    # Upload sessions (OneDrive's, pre-authorized: PUT /upload/{id} without a token), as
    # a file consent's uploadUrl names them: what was uploaded, by id; the ranges each
    # took (Content-Range), and what a session holds until its last byte came.
    uploads: dict[str, bytes] = field(default_factory=dict)
    upload_ranges: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1000)
        self._partial: dict[str, bytearray] = {}
        self._lock = threading.Lock()
        self._throttle_left = 0
        self._retry_after = 0.0
        self._blocked_until = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                status, body, headers = fake.get(self.path, self.headers)
                self._reply(status, body, headers)

            def do_POST(self) -> None:
                status, body, headers = fake.write("POST", self.path, self._body(), self.headers)
                self._reply(status, body, headers)

            def do_PUT(self) -> None:
                status, body, headers = fake.write("PUT", self.path, self._body(), self.headers)
                self._reply(status, body, headers)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.openid_url = self.url + "/v1/.well-known/openidconfiguration"
        self.token_url = self.url + "/{tenant}/oauth2/v2.0/token"
        # serve_forever's default poll interval (0.5 s) is what shutdown() waits for: the
        # teardown of every test. 20 ms keeps it short at no cost worth naming.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> FakeTeams:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what the fake serves -------------------------------------------------------

    def get(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        parts = [unquote(p) for p in urlsplit(path).path.split("/")]
        if parts[1:3] == ["v3", "conversations"] and len(parts) == 6 and parts[4] == "members":
            if headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                self.errors.append(f"GET {path} without the bot's token")
                return 401, {"message": "Authorization has been denied for this request."}, {}
            self.roster_requests.append(parts[5])
            role = "guest" if parts[5] in self.guests else "user"
            tenant = self.tenants.get(parts[5], TENANT)
            return 200, {"id": parts[5], "name": parts[5], "userRole": role, "tenantId": tenant}, {}
        if path == "/v1/.well-known/openidconfiguration":
            return 200, {"issuer": ISSUER, "jwks_uri": self.url + "/v1/.well-known/keys"}, {}
        if path == "/v1/.well-known/keys":
            numbers = _key("bot-framework").public_key().public_numbers()
            key = {
                "kty": "RSA",
                "use": "sig",
                "kid": KID,
                "n": _b64(numbers.n),
                "e": _b64(numbers.e),
            }
            return 200, {"keys": [key]}, {}
        if path.startswith("/files/") and path[7:] in self.files:
            return 200, self.files[path[7:]], {"Content-Type": "application/octet-stream"}
        self.errors.append(f"GET {path}")
        return 404, {"error": {"code": "NotFound"}}, {}

    def write(
        self, method: str, path: str, raw: bytes, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if path == f"/{TENANT}/oauth2/v2.0/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            self.token_requests.append(form)
            if (form.get("client_id"), form.get("client_secret")) != (APP_ID, PASSWORD):
                return (
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret",
                    },
                    {},
                )
            return (
                200,
                {"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN},
                {},
            )
        if path.startswith("/upload/") and method == "PUT":
            if "Authorization" in headers:  # the bot's token has no business there
                self.errors.append(f"PUT {path} with an Authorization header")
            return self._upload_range(path[8:], raw, headers.get("Content-Range") or "")
        if headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            self.errors.append(f"{method} {path} without the bot's token")
            return 401, {"message": "Authorization has been denied for this request."}, {}
        parts = [unquote(p) for p in urlsplit(path).path.split("/")]
        body = json.loads(raw or b"{}")
        with self._lock:
            now = time.monotonic()
            if self._throttle_left > 0:
                self._throttle_left -= 1
                self.throttled += 1
                self._blocked_until = now + self._retry_after
                return (
                    429,
                    {"error": {"code": "TooManyRequests"}},
                    {"Retry-After": f"{self._retry_after:g}"},
                )
            if now < self._blocked_until:
                self.early.append(path)
            if parts[1:3] == ["v3", "conversations"] and len(parts) == 3 and method == "POST":
                self.created.append(body)
                return 200, {"id": "a:personal-" + body["members"][0]["id"]}, {}
            if (
                parts[1:3] == ["v3", "conversations"]
                and len(parts) == 5
                and parts[4] == "activities"
                and method == "POST"
            ):
                activity_id = str(next(self._ids))
                self.sent.append(Sent("POST", parts[3], activity_id, body))
                return 201, {"id": activity_id}, {}
            if parts[1:3] == ["v3", "conversations"] and len(parts) == 6 and method == "PUT":
                known = {s.activity_id for s in self.sent}
                if parts[5] not in known:
                    return 404, {"error": {"code": "ActivityNotFoundInConversation"}}, {}
                self.sent.append(Sent("PUT", parts[3], parts[5], body))
                return 200, {"id": parts[5]}, {}
        self.errors.append(f"{method} {path}")
        return 404, {"error": {"code": "NotFound"}}, {}

    def _upload_range(
        self, session: str, raw: bytes, claimed: str
    ) -> tuple[int, Any, dict[str, str]]:
        """One PUT of a byte range as OneDrive's upload session takes it: the next range in
        order, its Content-Range matching its body, under 60 MiB, a multiple of 320 KiB
        unless it is the last; 202 with the next expected range until the last byte, then
        201 with the drive item. Anything else is a 400 and an error of the test."""
        found = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", claimed)
        held = self._partial.setdefault(session, bytearray())
        first, last, total = (int(n) for n in found.groups()) if found else (-1, -1, -1)
        ends = last + 1 == total or (total == 0 and last == 0 and not raw)
        wrong = (
            found is None
            or first != len(held)
            or (raw and last - first + 1 != len(raw))
            or len(raw) >= 60 * 1024 * 1024
            or (not ends and len(raw) % (320 * 1024) != 0)
            or last + 1 > max(total, 1)
        )
        if wrong:
            self.errors.append(f"upload {session}: range {claimed!r} after {len(held)} bytes")
            return 400, {"error": {"code": "invalidRange"}}, {}
        self.upload_ranges.setdefault(session, []).append(claimed)
        held.extend(raw)
        if not ends:
            return 202, {"nextExpectedRanges": [f"{len(held)}-"]}, {}
        self.uploads[session] = bytes(self._partial.pop(session))
        return 201, {"id": session, "name": session, "size": total}, {}

    # --- for tests ----------------------------------------------------------------------

    def throttle(self, times: int, retry_after: float) -> None:
        with self._lock:
            self._throttle_left, self._retry_after = times, retry_after

    def to(self, conversation: str) -> list[Sent]:
        return [s for s in self.sent if s.conversation.split(";")[0] == conversation]

    def signed(self, *, forged: bool = False, audience: str = APP_ID, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "serviceurl": self.url,
            **claims,
        }
        key = _key("forger" if forged else "bot-framework")
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": KID})


class TeamsUser:
    """Teams, sending one person's activities to Pinwall's /teams/messages."""

    def __init__(
        self,
        fake: FakeTeams,
        endpoint: str,
        user: str,
        name: str,
        *,
        locale: str = "de-DE",
        tenant: str = TENANT,
    ) -> None:
        self.fake, self.endpoint = fake, endpoint
        self.user, self.name, self.locale, self.tenant = user, name, locale, tenant
        self._ids = itertools.count(1)

    def activity(self, kind: str, conversation: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "id": f"{self.user}-{next(self._ids)}-{time.monotonic_ns()}",
            "timestamp": "2026-12-07T10:00:00.000Z",
            "serviceUrl": self.fake.url,
            "channelId": "msteams",
            "from": {"id": self.user, "name": self.name, "aadObjectId": "aad-" + self.user},
            "recipient": {"id": f"28:{APP_ID}", "name": "Pinwall"},
            "conversation": {"tenantId": self.tenant, **conversation},
            "channelData": {"tenant": {"id": self.tenant}},
            "locale": self.locale,
            **fields,
        }

    def personal(self) -> dict[str, Any]:
        return {"id": "a:personal-" + self.user, "conversationType": "personal"}

    @staticmethod
    def channel(channel_id: str, thread: str | None = None) -> dict[str, Any]:
        conversation = channel_id + (f";messageid={thread}" if thread else "")
        return {"id": conversation, "conversationType": "channel", "isGroup": True}

    async def post(self, activity: dict[str, Any], *, token: str | None = None) -> httpx.Response:
        """Signed with the test key unless `token` is given ("": no Authorization header)."""
        bearer = self.fake.signed() if token is None else token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        async with httpx.AsyncClient(timeout=20) as http:
            return await http.post(self.endpoint, json=activity, headers=headers)

    async def says(self, text: str, **fields: Any) -> httpx.Response:
        return await self.post(self.activity("message", self.personal(), text=text, **fields))

    async def mentions(
        self, channel_id: str, text: str, *, thread: str | None = None
    ) -> httpx.Response:
        at = "<at>Pinwall</at>"
        mention = {
            "type": "mention",
            "text": at,
            "mentioned": {"id": f"28:{APP_ID}", "name": "Pinwall"},
        }
        return await self.post(
            self.activity(
                "message", self.channel(channel_id, thread), text=f"{at} {text}", entities=[mention]
            )
        )

    async def answers_file_consent(
        self,
        sent: Sent,
        name: str,
        *,
        accept: bool = True,
        context: Any = None,
        upload_url: str | None = None,
    ) -> httpx.Response:
        """ "Allow" (or "Decline") on the consent card of file `name`: the invoke Teams
        sends, with an upload session on the fake (uploadUrl) for the bot to PUT to."""
        [consent] = [
            a
            for a in sent.body.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.teams.card.file.consent"
            and a.get("name") == name
        ]
        unique = f"drive-item-{name}"
        invoke = self.activity(
            "invoke",
            self.personal(),
            name="fileConsent/invoke",
            replyToId=sent.activity_id,
            value={
                "type": "fileUpload",
                "action": "accept" if accept else "decline",
                "context": consent["content"]["acceptContext"] if context is None else context,
                "uploadInfo": {
                    "contentUrl": f"https://contoso-my.sharepoint.com/personal/{unique}",
                    "name": name,
                    "uploadUrl": upload_url or f"{self.fake.url}/upload/{unique}",
                    "uniqueId": unique,
                    "fileType": name.rsplit(".", 1)[-1],
                },
            },
        )
        return await self.post(invoke)

    async def presses(self, sent: Sent, title: str) -> httpx.Response:
        """Action.Execute on the card's button `title` (an invoke, as Teams sends it)."""
        actions = sent.card().get("actions") or []
        [action] = [a for a in actions if a.get("title") == title]
        conversation = (
            self.personal()
            if sent.conversation.startswith("a:")
            else self.channel(sent.conversation)
        )
        invoke = self.activity(
            "invoke",
            conversation,
            name="adaptiveCard/action",
            replyToId=sent.activity_id,
            value={
                "action": {"type": "Action.Execute", "verb": action["verb"], "data": action["data"]}
            },
        )
        return await self.post(invoke)


async def wait_until(predicate: Any, what: str, within: float = 8.0) -> None:
    import asyncio

    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
