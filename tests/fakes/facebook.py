"""A fake Facebook Graph API over real HTTP: what a page's poster calls.

`FakeFacebook` is an aiohttp server on 127.0.0.1, port 0, in a thread with its own
event loop; point the outlet's `base_url` at `fake.url`. Shapes as the Graph API
reference gives them:

- Paths are versioned (`/v24.0/...`; another shape is an error). The token comes as the
  `access_token` parameter (query, form or multipart field); none, unknown or expired
  is `{"error": {"message", "type": "OAuthException", "code": 190, "error_subcode",
  "fbtrace_id"}}` with status 400 (expired: subcode 463); a token for another page is
  code 200 (permissions).
- POST /{page-id}/feed (message, link, published, attached_media[i] = {"media_fbid"})
  -> {"id": "<page-id>_<post-id>"}; a message longer than 63,206 characters, no
  message, link or media, or media that are not this page's unpublished photos is code
  100 (invalid parameter).
- POST /{page-id}/photos (multipart `source`, or `url`; `published`, `caption`) ->
  {"id": "<photo-id>"} (and "post_id" when published); a file of 4 MB or more is code
  100; not an image is code 324.
- GET /{page-id}?fields=id,name -> {"id", "name"}.

Test-facing: `posts`, `photos`, `calls` ((method, path) in order), `add_page(id, name,
token)`, `expire(token)`, `fail(edge, status, error, headers)` answers the next call of
an edge ("feed", "photos") with an error, `hang(edge, seconds)` does what the call asks,
then holds the answer back (a timeout after sending).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import BodyPartReader, web

MAX_MESSAGE = 63_206
MAX_PHOTO_BYTES = 4 * 1024 * 1024


class GraphError(Exception):
    def __init__(
        self,
        message: str,
        code: int,
        *,
        kind: str = "OAuthException",
        subcode: int | None = None,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.kind, self.subcode = message, code, kind, subcode
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": "A" + secrets.token_hex(10),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


@dataclass
class Post:
    id: str
    page: str
    message: str
    link: str | None
    photos: list[str]


@dataclass
class Photo:
    id: str
    page: str
    data: bytes
    mime_type: str
    published: bool
    alt: str = ""


@dataclass
class _Token:
    page: str
    expired: bool = False


@dataclass
class _Fault:
    status: int
    error: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeFacebook:
    posts: list[Post] = field(default_factory=list)
    photos: dict[str, Photo] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._hangs: dict[str, deque[float]] = {}
        self._counter = 122_000_000_000_000
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- test-facing ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_page(self, page: str, name: str, token: str) -> None:
        with self._lock:
            self.pages[page] = name
            self._tokens[token] = _Token(page)

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens[token].expired = True

    def fail(
        self,
        edge: str,
        status: int,
        error: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        default = {"message": "An unexpected error has occurred.", "type": "OAuthException"}
        with self._lock:
            self._faults.setdefault(edge, deque()).append(
                _Fault(status, error or {**default, "code": 2}, headers or {})
            )

    def hang(self, edge: str, seconds: float) -> None:
        with self._lock:
            self._hangs.setdefault(edge, deque()).append(seconds)

    def reset(self) -> None:
        with self._lock:
            self.posts.clear()
            self.photos.clear()
            self.calls.clear()
            self._faults.clear()
            self._hangs.clear()
            for token in self._tokens.values():
                token.expired = False

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="fake-fb")
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
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type.startswith("multipart/"):
                async for part in await request.multipart():
                    if isinstance(part, BodyPartReader) and part.name:
                        if part.filename is not None:
                            data = await part.read()
                            params[part.name] = (bytes(data), part.headers.get("Content-Type", ""))
                        else:
                            params[part.name] = await part.text()
            else:
                params.update({k: str(v) for k, v in (await request.post()).items()})
        found = re.fullmatch(r"/(v\d+\.\d+)/(\d+)(?:/(\w+))?", request.path)
        edge = found.group(3) or "" if found else ""
        with self._lock:
            self.calls.append((request.method, request.path))
            faults = self._faults.get(edge)
            fault = faults.popleft() if faults else None
            hangs = self._hangs.get(edge)
            hang = hangs.popleft() if hangs else None
        if fault is not None:
            body = {"error": {**fault.error, "fbtrace_id": "A" + secrets.token_hex(10)}}
            return web.json_response(body, status=fault.status, headers=fault.headers)
        try:
            if found is None:
                raise GraphError("Unknown path components: " + request.path, 2500, status=400)
            result = self._dispatch(request.method, found.group(2), edge, params)
        except GraphError as exc:
            return web.json_response(exc.body(), status=exc.status, headers=exc.headers)
        if hang is not None:
            await asyncio.sleep(hang)
        return web.json_response(result)

    def _token(self, params: dict[str, Any], page: str) -> None:
        token = params.get("access_token")
        with self._lock:
            found = self._tokens.get(token) if isinstance(token, str) else None
        if found is None:
            raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)
        if found.expired:
            raise GraphError(
                "Error validating access token: Session has expired on Monday, 07-Dec-26 "
                "10:00:00 PST. The current time is Monday, 07-Dec-26 13:00:00 PST.",
                190,
                subcode=463,
            )
        if found.page != page:
            raise GraphError("(#200) The permission(s) pages_manage_posts are not available.", 200)

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return str(self._counter)

    def _dispatch(
        self, method: str, page: str, edge: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            name = self.pages.get(page)
        if name is None:
            raise GraphError(
                f"Unsupported {method.lower()} request. Object with ID '{page}' does not exist",
                100,
                kind="GraphMethodException",
                subcode=33,
            )
        self._token(params, page)
        if method == "GET" and edge == "":
            return {"id": page, "name": name}
        if method == "POST" and edge == "photos":
            return self._photo(page, params)
        if method == "POST" and edge == "feed":
            return self._feed(page, params)
        raise GraphError(f"Unknown path components: /{edge}", 2500)

    def _photo(self, page: str, params: dict[str, Any]) -> dict[str, Any]:
        source = params.get("source")
        if not isinstance(source, tuple):
            raise GraphError("(#324) Requires upload file", 324)
        data, mime = source
        if not str(mime).startswith("image/"):
            raise GraphError("(#324) Missing or invalid image file", 324)
        if len(data) >= MAX_PHOTO_BYTES:
            raise GraphError("(#100) The photo must be smaller than 4 MB", 100)
        published = str(params.get("published", "true")).lower() != "false"
        photo = Photo(
            self._next_id(), page, data, mime, published, str(params.get("alt_text_custom", ""))
        )
        with self._lock:
            self.photos[photo.id] = photo
        if not published:
            return {"id": photo.id}
        post = Post(f"{page}_{self._next_id()}", page, str(params.get("caption", "")), None, [])
        post.photos.append(photo.id)
        with self._lock:
            self.posts.append(post)
        return {"id": photo.id, "post_id": post.id}

    def _feed(self, page: str, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params.get("message", ""))
        link = params.get("link")
        if len(text) > MAX_MESSAGE:
            raise GraphError(
                f"(#100) Param message must be at most {MAX_MESSAGE} characters long", 100
            )
        photos: list[str] = []
        for key in sorted(k for k in params if k.startswith("attached_media[")):
            try:
                media = json.loads(params[key])
            except ValueError:
                raise GraphError(f"(#100) Param {key} must be a JSON object", 100) from None
            fbid = str(media.get("media_fbid", ""))
            with self._lock:
                photo = self.photos.get(fbid)
            if photo is None or photo.page != page or photo.published:
                raise GraphError(f"(#100) Invalid media_fbid {fbid}", 100)
            photos.append(fbid)
        if not text and not link and not photos:
            raise GraphError("(#100) Missing message or attachment", 100)
        if link is not None and not str(link).startswith(("http://", "https://")):
            raise GraphError("(#100) Param link must be a valid URL", 100)
        post = Post(f"{page}_{self._next_id()}", page, text, link, photos)
        with self._lock:
            self.posts.append(post)
            for fbid in photos:
                self.photos[fbid].published = True
        return {"id": post.id}
