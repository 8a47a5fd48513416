"""A fake LinkedIn REST API over real HTTP: the calls a company page's poster makes.

`FakeLinkedIn` is an aiohttp server on 127.0.0.1, port 0, in a thread with its own
event loop; point the outlet's `base_url` at `fake.url`. Shapes as LinkedIn's API
reference gives them (Posts API, Images API, versioned REST):

- Every /rest call needs `Authorization: Bearer <token>`, `LinkedIn-Version: YYYYMM`
  (missing: 400 VERSION_MISSING) and `X-Restli-Protocol-Version: 2.0.0`. An unknown
  token is 401 INVALID_ACCESS_TOKEN, an expired one 401 EXPIRED_ACCESS_TOKEN
  (`{"status", "serviceErrorCode", "code", "message"}`).
- POST /rest/images?action=initializeUpload {"initializeUploadRequest": {"owner"}} ->
  {"value": {"uploadUrlExpiresAt", "uploadUrl", "image": "urn:li:image:..."}}; the
  bytes are PUT to the uploadUrl (201).
- POST /rest/posts {author, commentary, visibility, distribution, lifecycleState,
  content?} -> 201, empty body, the post's URN in the `x-restli-id` header. The author
  must be an organization the token's member administers (else 403); commentary at
  most 3,000 characters (else 422); content is one of media {id}, multiImage {images:
  2 to 20}, article {source, title, description?, thumbnail?}; images must be
  uploaded by that owner. The commentary is read in the little text format as LinkedIn
  does: backslash escapes are undone, and the text is cut at the first unescaped
  reserved character (what LinkedIn silently does), so `posts[i].shown` is what
  readers see.
- GET /rest/organizations/<id> -> {"id", "localizedName", "vanityName"} (404 unknown).

Test-facing: `posts`, `images`, `calls` ((method, path) in order), `add_token(token,
organizations, expired=False)`, `fail(path, status, body=None, headers=None)` answers
the next call of a path with an error, `hang(path, seconds)` does what the call asks,
then holds the answer back (a timeout after sending).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

MAX_COMMENTARY = 3000
MAX_MULTI_IMAGES = 20
RESERVED = set("\\|{}@[]()<>#*_~")
_URL = re.compile(r"https?://[^\s<>\"]+")


def shown_commentary(raw: str) -> str:
    """What LinkedIn shows of a little-text commentary: escapes undone, and the text cut
    at the first unescaped reserved character (URLs are taken as they are)."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        url = _URL.match(raw, i)
        if url is not None:
            out.append(url.group(0))
            i = url.end()
            continue
        char = raw[i]
        if char == "\\" and i + 1 < len(raw) and raw[i + 1] in RESERVED:
            out.append(raw[i + 1])
            i += 2
            continue
        if char in RESERVED:
            break  # LinkedIn drops the rest
        out.append(char)
        i += 1
    return "".join(out)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        service_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.service_code = service_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.code:
            body["code"] = self.code
        if self.service_code is not None:
            body["serviceErrorCode"] = self.service_code
        return body


@dataclass
class Post:
    urn: str
    body: dict[str, Any]
    shown: str  # the commentary as readers see it
    version: str  # the LinkedIn-Version it was made with


@dataclass
class Image:
    urn: str
    owner: str
    data: bytes = b""
    mime_type: str = ""
    uploaded: bool = False


@dataclass
class _Token:
    organizations: set[str]
    expired: bool = False


@dataclass
class _Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeLinkedIn:
    posts: list[Post] = field(default_factory=list)
    images: dict[str, Image] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    organizations: dict[str, str] = field(default_factory=dict)  # id -> name

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._uploads: dict[str, str] = {}  # upload id -> image urn
        self._faults: dict[str, deque[_Fault]] = {}
        self._hangs: dict[str, deque[float]] = {}
        self._counter = 7_000_000_000_000_000_000
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- test-facing ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_organization(self, number: str, name: str) -> str:
        with self._lock:
            self.organizations[number] = name
        return f"urn:li:organization:{number}"

    def add_token(self, token: str, organizations: set[str], *, expired: bool = False) -> None:
        with self._lock:
            self._tokens[token] = _Token(set(organizations), expired)

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens[token].expired = True

    def fail(
        self,
        path: str,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        default = {"status": status, "message": "Internal Server Error"}
        fault = _Fault(status, body or default, headers or {})
        with self._lock:
            self._faults.setdefault(path, deque()).append(fault)

    def hang(self, path: str, seconds: float) -> None:
        with self._lock:
            self._hangs.setdefault(path, deque()).append(seconds)

    def reset(self) -> None:
        with self._lock:
            self.posts.clear()
            self.images.clear()
            self.calls.clear()
            self._faults.clear()
            self._hangs.clear()
            for token in self._tokens.values():
                token.expired = False

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="fake-linkedin")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
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
        path = request.path
        body = await request.read()  # the whole request, before anything else
        with self._lock:
            self.calls.append((request.method, path))
            faults = self._faults.get(path)
            fault = faults.popleft() if faults else None
            hangs = self._hangs.get(path)
            hang = hangs.popleft() if hangs else None
        if fault is not None:
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        try:
            status, result, headers = self._dispatch(request, path, body)
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status, headers=exc.headers)
        if hang is not None:
            await asyncio.sleep(hang)
        if result is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(result, status=status, headers=headers)

    def _dispatch(
        self, request: web.Request, path: str, body: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        if path.startswith("/upload/") and request.method == "PUT":
            return self._put_upload(request, path.removeprefix("/upload/"), body)
        if not path.startswith("/rest/"):
            raise ApiError(404, "", f"No resource found for {path}")
        version = self._headers(request)
        token = self._token(request)
        if path == "/rest/images" and request.method == "POST":
            if request.query.get("action") != "initializeUpload":
                raise ApiError(400, "", "Unsupported action")
            return 200, self._initialize(token, self._json(body)), {}
        if path == "/rest/posts" and request.method == "POST":
            return self._create_post(token, self._json(body), version)
        found = re.fullmatch(r"/rest/organizations/(\d+)", path)
        if found and request.method == "GET":
            number = found.group(1)
            with self._lock:
                name = self.organizations.get(number)
            if name is None:
                raise ApiError(404, "", f"Organization {number} not found")
            if f"urn:li:organization:{number}" not in token.organizations:
                raise ApiError(
                    403, "ACCESS_DENIED", "Not enough permissions to access: organization"
                )
            return 200, {"id": int(number), "localizedName": name, "vanityName": name.lower()}, {}
        raise ApiError(404, "", f"No resource found for {request.method} {path}")

    @staticmethod
    def _headers(request: web.Request) -> str:
        version = request.headers.get("LinkedIn-Version", "")
        if not version:
            raise ApiError(
                400,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
            )
        if not re.fullmatch(r"20\d{4}", version):
            raise ApiError(400, "VERSION_INVALID", f"Invalid version {version}")
        if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
            raise ApiError(400, "", "Rest.li protocol version 2.0.0 is required")
        return version

    def _token(self, request: web.Request) -> _Token:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        with self._lock:
            found = self._tokens.get(token)
        if found is None:
            raise ApiError(401, "INVALID_ACCESS_TOKEN", "Invalid access token", service_code=65600)
        if found.expired:
            raise ApiError(
                401,
                "EXPIRED_ACCESS_TOKEN",
                "The token used in the request has expired",
                service_code=65601,
            )
        return found

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(400, "", "Invalid JSON body") from None
        if not isinstance(data, dict):
            raise ApiError(400, "", "Body must be an object")
        return data

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _initialize(self, token: _Token, data: dict[str, Any]) -> dict[str, Any]:
        owner = (data.get("initializeUploadRequest") or {}).get("owner")
        if not isinstance(owner, str) or owner not in token.organizations:
            raise ApiError(403, "ACCESS_DENIED", f"Not enough permissions for owner {owner}")
        n = self._next_id()
        urn = f"urn:li:image:D4E10AQ{n}"
        upload = f"u{n}"
        with self._lock:
            self.images[urn] = Image(urn, owner)
            self._uploads[upload] = urn
        return {
            "value": {
                "uploadUrlExpiresAt": int(time.time() * 1000) + 3_600_000,
                "uploadUrl": f"{self.url}/upload/{upload}",
                "image": urn,
            }
        }

    def _put_upload(
        self, request: web.Request, upload: str, body: bytes
    ) -> tuple[int, None, dict[str, str]]:
        self._token(request)  # the upload URL takes the same bearer token
        with self._lock:
            urn = self._uploads.pop(upload, None)
            image = self.images.get(urn) if urn else None
            if image is None:
                raise ApiError(404, "", "Upload URL not found or used")
            image.data, image.uploaded = body, True
            image.mime_type = request.headers.get("Content-Type", "")
        return 201, None, {}

    def _image(self, owner: str, ref: Any, where: str) -> None:
        urn = ref.get("id") if isinstance(ref, dict) else None
        with self._lock:
            image = self.images.get(str(urn))
        if image is None or not image.uploaded or image.owner != owner:
            raise ApiError(422, "", f"ERROR :: {where}/id :: {urn} is not an available image")

    def _create_post(
        self, token: _Token, data: dict[str, Any], version: str
    ) -> tuple[int, None, dict[str, str]]:
        author = data.get("author")
        if not isinstance(author, str) or not author.startswith("urn:li:"):
            raise ApiError(422, "", "ERROR :: /author :: field is required")
        if author not in token.organizations:
            raise ApiError(403, "ACCESS_DENIED", f"Not enough permissions to post as {author}")
        raw = data.get("commentary", "")
        if not isinstance(raw, str):
            raise ApiError(422, "", "ERROR :: /commentary :: must be a string")
        shown = shown_commentary(raw)
        if len(shown) > MAX_COMMENTARY:
            raise ApiError(
                422, "", f"ERROR :: /commentary :: length {len(shown)} exceeds {MAX_COMMENTARY}"
            )
        for key, allowed in (
            ("visibility", {"PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER"}),
            ("lifecycleState", {"PUBLISHED", "DRAFT"}),
        ):
            if data.get(key) not in allowed:
                raise ApiError(422, "", f"ERROR :: /{key} :: invalid value {data.get(key)!r}")
        distribution = data.get("distribution") or {}
        if distribution.get("feedDistribution") not in ("MAIN_FEED", "NONE"):
            raise ApiError(422, "", "ERROR :: /distribution/feedDistribution :: required")
        content = data.get("content")
        if content is not None:
            if not isinstance(content, dict) or len(content) != 1:
                raise ApiError(422, "", "ERROR :: /content :: exactly one kind of content")
            if "media" in content:
                self._image(author, content["media"], "/content/media")
            elif "multiImage" in content:
                images = (content["multiImage"] or {}).get("images") or []
                if not 2 <= len(images) <= MAX_MULTI_IMAGES:
                    raise ApiError(422, "", "ERROR :: /content/multiImage/images :: 2 to 20 images")
                for i, image in enumerate(images):
                    self._image(author, image, f"/content/multiImage/images/{i}")
            elif "article" in content:
                article = content["article"] or {}
                for key in ("source", "title"):
                    if not isinstance(article.get(key), str) or not article[key]:
                        raise ApiError(422, "", f"ERROR :: /content/article/{key} :: required")
                if "thumbnail" in article:
                    self._image(author, {"id": article["thumbnail"]}, "/content/article/thumbnail")
            else:
                raise ApiError(422, "", f"ERROR :: /content :: unsupported {sorted(content)}")
        urn = f"urn:li:share:{self._next_id()}"
        with self._lock:
            self.posts.append(Post(urn, data, shown, version))
        return 201, None, {"x-restli-id": urn, "x-linkedin-id": urn}
