"""A fake messenger over real HTTP, with a platform's rate limits and 429s on demand.

`FakePlatform` is an HTTP server on 127.0.0.1, port 0, in a thread: POST /send with
{"conversation", "kind", "text", "key"} answers {"message_id"} or 429 with a
Retry-After header, as a real platform does when its limits are passed or when told to
(`storm`). It records every message it accepted, and every send that came before a
Retry-After it had given had passed (`early`). With `idempotent`, a send that repeats
a key it accepted before is answered with the first message's id and not posted again
(`deduped`), as Matrix does with transaction ids. It counts the requests it is working
on (`inflight`), so a test can tell when sends are under way and when they are over.
`hold_answers()` makes it post what it accepts but keep the answer back (`held`) until
`release_answers()`: the sender cannot know its message is out, as when it dies then.
The server lives in the test process: a request that reached it is answered (and, if
accepted, posted) even when the sender is killed meanwhile, as on a real platform.

`FakePlatformAdapter` is Pinwall's adapter for it: it speaks that protocol with httpx
and reports each send's outcome.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

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


@dataclass
class Accepted:
    conversation: str
    kind: str
    text: str
    key: str | None
    at: float


@dataclass
class Limits:
    overall: float | None = None  # messages per second across the platform
    per_conversation: float | None = None


class _Window:
    """Counts sends to enforce a rate over a sliding one-second window (with slack)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_free = 0.0

    def admit(self, now: float) -> float:
        # 10 ms of slack: a sender pacing exactly at the rate is not punished for jitter.
        if now + 0.01 < self.next_free:
            return self.next_free - now
        self.next_free = max(now, self.next_free) + self.interval
        return 0.0


@dataclass
class FakePlatform:
    name: str = "fake"
    limits: Limits = field(default_factory=Limits)
    storm: float = 0.0  # share of sends answered 429 regardless of limits
    storm_retry_after: float = 0.2
    idempotent: bool = False  # dedupe by the key a sender gives (like Matrix txn ids)
    latency: float = 0.0
    accepted: list[Accepted] = field(default_factory=list)
    refused: int = 0
    early: int = 0
    deduped: int = 0  # sends of a key accepted before, answered without posting again
    requests: int = 0
    inflight: int = 0  # requests being worked on right now
    max_inflight: int = 0
    held: int = 0  # messages accepted while answers were held back
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _overall: _Window | None = None
    _conversations: dict[str, _Window] = field(default_factory=dict)
    _blocked_until: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _by_key: dict[str, str] = field(default_factory=dict)
    _random: random.Random = field(default_factory=lambda: random.Random(7))
    _holding: bool = False
    _answer: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.limits.overall:
            self._overall = _Window(self.limits.overall)
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            protocol_version = "HTTP/1.1"  # keep-alive, as the platforms' APIs
            disable_nagle_algorithm = True  # answers go out at once, not after an ACK

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    if len(raw) < length:
                        raise ValueError("cut short")
                    body = json.loads(raw)
                    if not isinstance(body, dict) or "conversation" not in body:
                        raise ValueError("no conversation")
                except ValueError:  # the sender died in the middle of the request
                    self.close_connection = True
                    return
                status, headers, payload = platform.handle(body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the sender is gone; what was accepted stays accepted
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # many senders connect at once

            def handle_error(self, request: Any, client_address: Any) -> None:
                if isinstance(sys.exc_info()[1], ConnectionError):
                    return  # a sender that was killed: not the platform's problem
                super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def hold_answers(self) -> None:
        """From now on, accepted messages are posted but not answered until released."""
        with self._lock:
            self._answer.clear()
            self._holding = True

    def release_answers(self) -> None:
        with self._lock:
            self._holding = False
            self._answer.set()

    def close(self) -> None:
        self.release_answers()
        self.server.shutdown()
        self.server.server_close()

    def handle(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return self._handle(body)
        finally:
            with self._lock:
                self.inflight -= 1

    def _handle(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.latency:
            time.sleep(self.latency)
        conversation = str(body.get("conversation"))
        key = body.get("key")
        with self._lock:
            now = time.monotonic()
            if now < self._blocked_until[conversation]:
                self.early += 1  # came back before the Retry-After we gave had passed
            if self.idempotent and key and key in self._by_key:
                self.deduped += 1
                return 200, {}, {"message_id": self._by_key[key]}
            wait = 0.0
            if self.storm and self._random.random() < self.storm:
                wait = self.storm_retry_after
            if not wait and self.limits.per_conversation:
                window = self._conversations.setdefault(
                    conversation, _Window(self.limits.per_conversation)
                )
                wait = window.admit(now)
            if not wait and self._overall is not None:
                wait = self._overall.admit(now)
            if wait:
                self.refused += 1
                # Rounded up to the millisecond: a sender that waits what it was told
                # is never early.
                wait = math.ceil(wait * 1000) / 1000
                self._blocked_until[conversation] = now + wait
                return 429, {"Retry-After": f"{wait:.3f}"}, {"ok": False, "retry_after": wait}
            message_id = f"{self.name}-{len(self.accepted) + 1}"
            self.accepted.append(
                Accepted(conversation, str(body.get("kind")), str(body.get("text")), key, now)
            )
            if key:
                self._by_key[key] = message_id
            holding = self._holding
            if holding:
                self.held += 1
        if holding:
            self._answer.wait()
        return 200, {}, {"message_id": message_id}

    def count_by_conversation(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for a in self.snapshot():
            counts[a.conversation] += 1
        return dict(counts)

    def texts_by_conversation(self) -> dict[str, list[str]]:
        """What each conversation shows, in the order it was accepted."""
        texts: dict[str, list[str]] = defaultdict(list)
        for a in self.snapshot():
            texts[a.conversation].append(a.text)
        return dict(texts)

    def snapshot(self) -> list[Accepted]:
        with self._lock:
            return list(self.accepted)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no request is being worked on (one a killed sender left finishes)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self.inflight:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {self.inflight} requests still in progress")
            time.sleep(0.005)


class FakePlatformAdapter:
    """Pinwall's adapter for a FakePlatform: real HTTP, the platform's answers mapped."""

    capabilities = Capabilities(buttons=False)
    command_prefix = "/"

    def __init__(self, platform: str, url: str, *, send_keys: bool = False) -> None:
        self.platform = platform
        self.url = url
        self.send_keys = send_keys
        self.sends = 0  # requests this adapter made
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.url, timeout=10)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def healthy(self) -> bool:
        return self._client is not None

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        if self._client is None:
            await self.start()
        assert self._client is not None
        text = "\n".join(p for p in (to_plain(message.title or ""), to_plain(message.text)) if p)
        body = {"conversation": target.address, "kind": target.kind, "text": text}
        if self.send_keys and key:
            body["key"] = key
        self.sends += 1
        try:
            response = await self._client.post("/send", json=body)
        except httpx.HTTPError as exc:
            return DeliveryFailed(f"{type(exc).__name__}: {exc}")
        if response.status_code == 429:
            return RateLimited(float(response.headers.get("Retry-After", "1")))
        if response.status_code >= 500:
            return DeliveryFailed(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            return DeliveryFailed(f"HTTP {response.status_code}", permanent=True)
        return Delivered(message_id=response.json()["message_id"], conversation=target.address)
