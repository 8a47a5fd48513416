"""Feed polling: 500 feeds × 20 entries from a local server, polled twice.

    .venv/bin/python bench/feeds.py [--feeds 500] [--entries 20]

A local HTTP server in its own process serves every feed with an ETag (and answers a
matching If-None-Match with 304). The feeds belong to 10 groups; feed i and feed
i + N/2 carry the same articles (same links), in the same group, so half of the
entries arrive twice and must become one post each. Pinwall's poller (jobs.feeds,
through the guarded client, on SQLite in a temp file) polls them all once — fetch,
parse, de-duplicate, store — and then once more, when every answer is a 304.

Figures: the wall time of each poll, the posts created against the unique entries,
the peak RSS of this process (the server is another), and the parse cost: Pinwall's
parse_feed (entity check, feedparser, plain text) over the same 500 documents against
bare feedparser.parse. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import feedparser
from sqlalchemy import func, select

from app.wiring import make_core
from bot.clock import FakeClock
from bot.feeds import new_feed
from bot.runtime import Hub, run_event_loop
from jobs.feed_read import parse_feed
from jobs.feeds import FeedPolicy, FeedPoller
from jobs.fetch import GuardedClient
from store.db import Database
from store.models import Item, Role

GROUPS = 10


def feed_document(i: int, feeds: int, entries: int) -> bytes:
    """Feed i; its articles are shared with feed i ± feeds/2."""
    site = i % (feeds // 2)
    items = "".join(
        f"<item><title>Article {j} of site {site}</title>"
        f"<link>https://site{site}.example/articles/{j}</link>"
        f"<guid>https://site{site}.example/articles/{j}</guid>"
        f"<pubDate>Fri, 27 Nov 2026 {j % 24:02d}:00:00 GMT</pubDate>"
        f"<description>&lt;p&gt;What happened at &lt;b&gt;site {site}&lt;/b&gt; today: "
        f"{'a longer summary with some words in it, ' * 4}number {j}.&lt;/p&gt;</description>"
        "</item>"
        for j in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {i}</title><link>https://site{site}.example/</link>"
        f"<description>Feed number {i}</description>{items}</channel></rss>"
    ).encode()


def serve(port_out: multiprocessing.Queue[int], feeds: int, entries: int) -> None:
    docs = {f"/feed/{i}.xml": feed_document(i, feeds, entries) for i in range(feeds)}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                first, *lines = head.decode("latin-1").split("\r\n")
                path = first.split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines)
                    if k
                }
                body = docs.get(path)
                if body is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
                if headers.get("if-none-match") == etag:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n".encode())
                else:
                    writer.write(
                        (
                            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                            f"ETag: {etag}\r\nContent-Length: {len(body)}\r\n\r\n"
                        ).encode()
                        + body
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def setup(db: Database, clock: FakeClock, base: str, feeds: int) -> None:
    now = clock.now()
    with db.uow() as uow:
        person = uow.people.create(name="editor", role=Role.MEMBER, now=now)
        groups = [
            uow.groups.create(
                slug=f"news{g}",
                name=f"News {g}",
                visibility="open",
                admits_externals=False,
                created_by=person.id,
                now=now,
            )
            for g in range(GROUPS)
        ]
        for i in range(feeds):
            uow.feeds.add(
                new_feed(groups[i % GROUPS], f"{base}/feed/{i}.xml", added_by=None, now=now)
            )
        uow.commit()


def parse_costs(feeds: int, entries: int) -> tuple[float, float]:
    """Seconds for Pinwall's parse and for bare feedparser over the same documents
    (interleaved, best of three rounds each, so both see the same machine)."""
    docs = [
        (feed_document(i, feeds, entries), f"https://bench.example/feed/{i}.xml")
        for i in range(feeds)
    ]
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(3):
        started = time.perf_counter()
        for body, url in docs:
            feedparser.parse(
                io.BytesIO(body),
                response_headers={"content-location": url, "content-type": "application/rss+xml"},
            )
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        for body, url in docs:
            parse_feed(body, url, "application/rss+xml")
        ours.append(time.perf_counter() - started)
    return min(ours), min(bare)


async def polls(db: Database, clock: FakeClock, feeds: int) -> tuple[float, float, int]:
    hub = Hub(make_core(db, clock))
    poller = FeedPoller(
        hub, GuardedClient(allowlist="127.0.0.1"), FeedPolicy(batch=max(500, feeds))
    )
    try:
        started = time.perf_counter()
        first_count = await poller.tick(clock.now())
        first = time.perf_counter() - started
        assert first_count == feeds, first_count
        clock.advance(hours=7)  # past the longest interval: every feed is due again
        started = time.perf_counter()
        second_count = await poller.tick(clock.now())
        second = time.perf_counter() - started
        assert second_count == feeds, second_count
        with db.uow() as uow:
            items = int(uow.session.scalar(select(func.count()).select_from(Item)) or 0)
    finally:
        hub.close()
    return first, second, items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--entries", type=int, default=20)
    args = parser.parse_args(argv)
    feeds, entries = args.feeds - args.feeds % 2, args.entries
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = ctx.Queue()
    server = ctx.Process(target=serve, args=(ports, feeds, entries), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=30)
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            db.upgrade()
            clock = FakeClock()
            setup(db, clock, f"http://127.0.0.1:{port}", feeds)
            first, second, items = run_event_loop(polls(db, clock, feeds))
            db.dispose()
    finally:
        server.terminate()
        server.join()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ours, bare = parse_costs(feeds, entries)
    unique = feeds // 2 * entries

    print(f"{feeds} feeds × {entries} entries ({unique} unique), SQLite")
    print(f"  first poll        {first:8.2f} s   (goal ≤ 20 s)")
    print(f"  second poll (304) {second:8.2f} s   (goal ≤ 3 s)")
    print(f"  posts created     {items:8d}     (unique entries {unique})")
    print(f"  peak RSS          {peak_mb:8.1f} MB  (goal ≤ 250 MB)")
    print(
        f"  parse             {ours:8.2f} s   bare feedparser {bare:.2f} s: "
        f"{ours / bare:.2f}× (goal ≤ 1.2×)"
    )
    print(
        json.dumps(
            {
                "first_poll_s": round(first, 3),
                "second_poll_s": round(second, 3),
                "items": items,
                "unique_entries": unique,
                "peak_rss_mb": round(peak_mb, 1),
                "parse_ratio_vs_feedparser": round(ours / bare, 3),
            }
        )
    )
    return 0 if items == unique else 1


if __name__ == "__main__":
    sys.exit(main())
