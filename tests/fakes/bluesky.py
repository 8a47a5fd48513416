"""A fake Bluesky PDS over real HTTP: the XRPC methods a poster uses, answered as the real one.

`FakeBluesky` is an aiohttp server on 127.0.0.1, port 0, in a thread with its own event
loop. Point atproto's client at it with `AsyncClient(base_url=fake.url)`.

What it serves, with the shapes of the lexicons (and what atproto's models parse):
- com.atproto.server.createSession {identifier, password} -> {did, didDoc, handle,
  accessJwt, refreshJwt, active, ...}; the identifier may be the handle or the DID; a
  wrong one is 401 AuthenticationRequired "Invalid identifier or password". The tokens
  are real JWTs (HS256; atproto reads `exp` to refresh in time); the DID document names
  this server as the account's PDS, so the client keeps talking to it.
- com.atproto.server.refreshSession (Bearer refreshJwt) -> fresh tokens;
  com.atproto.server.getSession.
- com.atproto.repo.uploadBlob (raw body, Content-Type) -> {"blob": {"$type": "blob",
  "ref": {"$link": CIDv1 raw sha-256}, "mimeType", "size"}}.
- com.atproto.repo.createRecord {repo, collection, record, rkey?, validate?} -> {uri,
  cid, commit, validationStatus}; an app.bsky.feed.post record is validated as the PDS
  does: text at most 300 graphemes and 3000 UTF-8 bytes, createdAt, facets (byte ranges
  inside the text, known features), embeds (images: at most 4, each a blob this account
  uploaded, an image, at most 1,000,000 bytes, with alt; external: uri, title,
  description, thumb). Errors are 400 InvalidRequest with the PDS's message.
- Auth: a missing token is 401 AuthMissing, an unknown one 400 InvalidToken, an
  expired one 400 ExpiredToken (all as the PDS answers).

Test-facing: `posts` (the records made, with their rkeys), `blobs`, `sessions_created`,
`calls` (method names in order); `fail(method, status, error, ...)` answers the next
call(s) of a method with an error (e.g. 502, or 429 with rate-limit headers);
`hang(method, seconds)` reads the next call whole, does what it asks, and holds the answer
back (a timeout after sending); `expire_access_tokens()` lets every access token lapse.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import regex
from aiohttp import web

POST = "app.bsky.feed.post"
MAX_GRAPHEMES = 300
MAX_TEXT_BYTES = 3000
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000
MAX_BLOB_BYTES = 50 * 1024 * 1024
ACCESS_SECONDS = 2 * 3600
REFRESH_SECONDS = 90 * 24 * 3600
_B32_SORT = "234567abcdefghijklmnopqrstuvwxyz"
_SECRET = secrets.token_bytes(32)


class XrpcError(Exception):
    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}


def _invalid(message: str) -> XrpcError:
    return XrpcError(400, "InvalidRequest", message)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(payload: dict[str, Any]) -> str:
    head = _b64(json.dumps({"typ": "at+jwt", "alg": "HS256"}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = hmac.new(_SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _cid(data: bytes, codec: int) -> str:
    """A CIDv1 (sha2-256) in base32, as the PDS names blobs (raw, 0x55) and records (0x71)."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _tid(micros: int, clock: int) -> str:
    value = (micros << 10) | (clock & 0x3FF)
    return "".join(_B32_SORT[(value >> (5 * i)) & 31] for i in range(12, -1, -1))


_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> int:
    return len(_GRAPHEME.findall(text))


@dataclass
class Account:
    handle: str
    password: str
    did: str
    email: str


@dataclass
class Post:
    did: str
    rkey: str
    uri: str
    cid: str
    record: dict[str, Any]


@dataclass
class Blob:
    did: str
    cid: str
    mime_type: str
    data: bytes


@dataclass
class _Fault:
    status: int
    error: str
    message: str
    headers: dict[str, str]


@dataclass
class _Session:
    did: str
    expires: float
    kind: str  # "access" | "refresh"


@dataclass
class FakeBluesky:
    accounts: dict[str, Account] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    blobs: dict[str, Blob] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    sessions_created: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Session] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._hangs: dict[str, deque[float]] = {}
        self._clock = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- test-facing ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_account(self, handle: str, password: str) -> Account:
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        account = Account(handle=handle, password=password, did=did, email=f"{handle}@mail.test")
        with self._lock:
            self.accounts[handle] = account
        return account

    def fail(
        self,
        method: str,
        status: int,
        error: str = "InternalServerError",
        message: str = "Internal Server Error",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        with self._lock:
            queue = self._faults.setdefault(method, deque())
            for _ in range(times):
                queue.append(_Fault(status, error, message, headers or {}))

    def hang(self, method: str, seconds: float) -> None:
        with self._lock:
            self._hangs.setdefault(method, deque()).append(seconds)

    def expire_access_tokens(self) -> None:
        with self._lock:
            for session in self._tokens.values():
                if session.kind == "access":
                    session.expires = time.time() - 1

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="fake-bsky")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=MAX_BLOB_BYTES + 1024)
        app.router.add_route("*", "/xrpc/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- HTTP ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.read()  # the whole request, before anything else
        with self._lock:
            self.calls.append(method)
            faults = self._faults.get(method)
            fault = faults.popleft() if faults else None
            hangs = self._hangs.get(method)
            hang = hangs.popleft() if hangs else None
        try:
            if fault is not None:
                raise XrpcError(fault.status, fault.error, fault.message, fault.headers)
            result = self._dispatch(method, request, body)
        except XrpcError as exc:
            return web.json_response(
                {"error": exc.error, "message": exc.message}, status=exc.status, headers=exc.headers
            )
        if hang is not None:
            await asyncio.sleep(hang)
        return web.json_response(result)

    def _dispatch(self, method: str, request: web.Request, body: bytes) -> dict[str, Any]:
        if method == "com.atproto.server.createSession":
            return self._create_session(self._json(request, body))
        if method == "com.atproto.server.refreshSession":
            return self._refresh_session(self._bearer(request, "refresh"))
        if method == "com.atproto.server.getSession":
            return self._get_session(self._bearer(request, "access"))
        if method == "com.atproto.repo.uploadBlob":
            return self._upload_blob(self._bearer(request, "access"), request, body)
        if method == "com.atproto.repo.createRecord":
            return self._create_record(self._bearer(request, "access"), self._json(request, body))
        raise XrpcError(501, "MethodNotImplemented", "Method Not Implemented")

    @staticmethod
    def _json(request: web.Request, body: bytes) -> dict[str, Any]:
        if request.method != "POST":
            raise XrpcError(405, "InvalidRequest", "Incorrect HTTP method")
        if not request.content_type.startswith("application/json"):
            raise _invalid(f"Wrong request encoding (Content-Type): {request.content_type}")
        try:
            data = json.loads(body)
        except ValueError:
            raise _invalid("Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _invalid("Input must be an object")
        return data

    def _bearer(self, request: web.Request, kind: str) -> Account:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise XrpcError(401, "AuthMissing", "Authentication Required")
        token = header.removeprefix("Bearer ")
        with self._lock:
            session = self._tokens.get(token)
            if session is None or session.kind != kind:
                raise XrpcError(400, "InvalidToken", "Token could not be verified")
            if session.expires < time.time():
                raise XrpcError(400, "ExpiredToken", "Token has expired")
            for account in self.accounts.values():
                if account.did == session.did:
                    return account
        raise XrpcError(400, "InvalidToken", "Token could not be verified")

    def _tokens_for(self, account: Account) -> dict[str, str]:
        now = int(time.time())
        access = _jwt(
            {
                "scope": "com.atproto.appPass",
                "sub": account.did,
                "aud": "did:web:pds.fake.test",
                "iat": now,
                "exp": now + ACCESS_SECONDS,
            }
        )
        refresh = _jwt(
            {
                "scope": "com.atproto.refresh",
                "sub": account.did,
                "aud": "did:web:pds.fake.test",
                "jti": secrets.token_urlsafe(16),
                "iat": now,
                "exp": now + REFRESH_SECONDS,
            }
        )
        with self._lock:
            self._tokens[access] = _Session(account.did, now + ACCESS_SECONDS, "access")
            self._tokens[refresh] = _Session(account.did, now + REFRESH_SECONDS, "refresh")
        return {"accessJwt": access, "refreshJwt": refresh}

    def _session_view(self, account: Account) -> dict[str, Any]:
        return {
            "handle": account.handle,
            "did": account.did,
            "didDoc": {
                "@context": [
                    "https://www.w3.org/ns/did/v1",
                    "https://w3id.org/security/multikey/v1",
                ],
                "id": account.did,
                "alsoKnownAs": [f"at://{account.handle}"],
                "verificationMethod": [],
                "service": [
                    {
                        "id": "#atproto_pds",
                        "type": "AtprotoPersonalDataServer",
                        "serviceEndpoint": self.url,
                    }
                ],
            },
            "email": account.email,
            "emailConfirmed": True,
            "emailAuthFactor": False,
            "active": True,
        }

    def _create_session(self, data: dict[str, Any]) -> dict[str, Any]:
        identifier = str(data.get("identifier") or "")
        password = data.get("password")
        with self._lock:
            account = next(
                (
                    a
                    for a in self.accounts.values()
                    if identifier.lower() in (a.handle, a.did, a.email)
                ),
                None,
            )
            if account is None or not isinstance(password, str) or password != account.password:
                raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
            self.sessions_created += 1
        return {**self._session_view(account), **self._tokens_for(account)}

    def _refresh_session(self, account: Account) -> dict[str, Any]:
        return {**self._session_view(account), **self._tokens_for(account)}

    def _get_session(self, account: Account) -> dict[str, Any]:
        return self._session_view(account)

    def _upload_blob(self, account: Account, request: web.Request, body: bytes) -> dict[str, Any]:
        if request.method != "POST":
            raise XrpcError(405, "InvalidRequest", "Incorrect HTTP method")
        if len(body) > MAX_BLOB_BYTES:
            raise XrpcError(400, "BlobTooLarge", "This file is too large")
        mime = request.headers.get("Content-Type", "*/*").split(";")[0].strip()
        if mime in ("", "*/*"):
            mime = "application/octet-stream"
        cid = _cid(body, 0x55)
        with self._lock:
            self.blobs[cid] = Blob(account.did, cid, mime, body)
        return {
            "blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(body)}
        }

    # --- records -----------------------------------------------------------------

    def _create_record(self, account: Account, data: dict[str, Any]) -> dict[str, Any]:
        repo = data.get("repo")
        if repo not in (account.did, account.handle):
            raise _invalid("Invalid repo")  # the PDS: another account's repo is not yours
        collection = data.get("collection")
        record = data.get("record")
        if not isinstance(record, dict):
            raise _invalid("Input/record must be an object")
        if collection != POST:
            raise _invalid(f"Unsupported collection: {collection}")
        if record.get("$type") != POST:
            raise _invalid(f"Invalid $type: expected {POST}, got {record.get('$type')}")
        self._validate_post(account, record)
        with self._lock:
            rkey = data.get("rkey")
            if rkey is None:
                self._clock += 1
                rkey = _tid(time.time_ns() // 1000, self._clock)
            if any(p.did == account.did and p.rkey == rkey for p in self.posts):
                raise _invalid(f"Record already exists: at://{account.did}/{POST}/{rkey}")
            cid = _cid(json.dumps(record, sort_keys=True).encode(), 0x71)
            uri = f"at://{account.did}/{POST}/{rkey}"
            self.posts.append(Post(account.did, rkey, uri, cid, record))
            rev = _tid(time.time_ns() // 1000, self._clock)
        return {
            "uri": uri,
            "cid": cid,
            "commit": {"cid": _cid(rev.encode(), 0x71), "rev": rev},
            "validationStatus": "valid",
        }

    def _validate_post(self, account: Account, record: dict[str, Any]) -> None:
        what = f"Invalid {POST} record"
        text = record.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{what}: Record/text must be a string")
        if len(text.encode()) > MAX_TEXT_BYTES:
            raise _invalid(
                f"{what}: Record/text must not be longer than {MAX_TEXT_BYTES} characters"
            )
        if graphemes(text) > MAX_GRAPHEMES:
            raise _invalid(f"{what}: Record/text must not be longer than {MAX_GRAPHEMES} graphemes")
        created = record.get("createdAt")
        try:
            datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(f"{what}: Record/createdAt must be an valid atproto datetime") from None
        size = len(text.encode())
        for i, facet in enumerate(record.get("facets") or []):
            index = facet.get("index") or {}
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
                raise _invalid(f"{what}: Record/facets/{i}/index is outside the text")
            features = facet.get("features") or []
            if not features:
                raise _invalid(f"{what}: Record/facets/{i}/features must not be empty")
            for feature in features:
                kind = feature.get("$type")
                if kind == "app.bsky.richtext.facet#link":
                    if not str(feature.get("uri", "")).startswith(("https://", "http://")):
                        raise _invalid(f"{what}: Record/facets/{i}/features/0/uri must be a uri")
                elif kind == "app.bsky.richtext.facet#tag":
                    if not feature.get("tag"):
                        raise _invalid(f"{what}: Record/facets/{i}/features/0/tag is required")
                elif kind != "app.bsky.richtext.facet#mention":
                    raise _invalid(f"{what}: Record/facets/{i}/features/0 has an unknown $type")
        embed = record.get("embed")
        if embed is None:
            return
        kind = embed.get("$type")
        if kind == "app.bsky.embed.images":
            images = embed.get("images")
            if not isinstance(images, list) or not images:
                raise _invalid(f"{what}: Record/embed/images must be a non-empty array")
            if len(images) > MAX_IMAGES:
                raise _invalid(
                    f"{what}: Record/embed/images must not have more than {MAX_IMAGES} elements"
                )
            for i, image in enumerate(images):
                if not isinstance(image.get("alt"), str):
                    raise _invalid(f'{what}: Record/embed/images/{i} must have the property "alt"')
                self._check_blob(account, image.get("image"), f"Record/embed/images/{i}/image")
        elif kind == "app.bsky.embed.external":
            external = embed.get("external") or {}
            for key in ("uri", "title", "description"):
                if not isinstance(external.get(key), str):
                    raise _invalid(f"{what}: Record/embed/external must have the property {key!r}")
            if external.get("thumb") is not None:
                self._check_blob(account, external["thumb"], "Record/embed/external/thumb")
        else:
            raise _invalid(f"{what}: Record/embed has an unsupported $type {kind!r}")

    def _check_blob(self, account: Account, ref: Any, where: str) -> None:
        if not isinstance(ref, dict) or ref.get("$type") != "blob":
            raise _invalid(f"Invalid {POST} record: {where} should be a blob ref")
        cid = (ref.get("ref") or {}).get("$link")
        with self._lock:
            blob = self.blobs.get(str(cid))
        if blob is None or blob.did != account.did:
            raise _invalid(f"Could not find blob: {cid}")
        if not blob.mime_type.startswith("image/"):
            raise _invalid(f"Wrong type of file. It is {blob.mime_type} but it must match image/*.")
        if len(blob.data) > MAX_IMAGE_BYTES:
            raise _invalid(
                f"This file is too large. It is {len(blob.data)} bytes but the maximum size is "
                f"{MAX_IMAGE_BYTES} bytes."
            )
        if ref.get("size") != len(blob.data) or ref.get("mimeType") != blob.mime_type:
            raise _invalid(f"Invalid {POST} record: {where} does not match the uploaded blob")
