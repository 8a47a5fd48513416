"""End to end: a feed added on the console is discovered from a page on a local server,
polled by the running Pinwall's scheduler, and its entries become posts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.test_console import lines_to, pinwall

PAGE = b"""<!doctype html><html><head><title>ACME blog</title>
<link rel="alternate" type="application/rss+xml" title="ACME" href="/blog/feed.xml">
</head><body>Welcome</body></html>"""

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>ACME News</title><link>http://acme.example/</link>
<item><guid>http://acme.example/2</guid><link>http://acme.example/2</link>
<title>Second poster</title><description>At the &lt;b&gt;station&lt;/b&gt;</description></item>
<item><guid>http://acme.example/1</guid><link>http://acme.example/1</link>
<title>First poster</title><description>In the city</description></item>
</channel></rss>"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, kind = {
            "/blog/": (PAGE, "text/html; charset=utf-8"),
            "/blog/feed.xml": (FEED, "application/rss+xml"),
        }.get(self.path, (b"not found", "text/plain"))
        self.send_response(200 if body != b"not found" else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_added_on_the_console_becomes_posts(tmp_path: Path, site: str) -> None:
    script = "\n".join(
        (
            "/group create news News",
            f"/feed add news {site}/blog/",
            "/wait 4",
            "/feed list news",
            "/items news",
            "/digest now",
            "/digest now",
            "",
        )
    )
    done = pinwall(tmp_path, script, PINWALL_FETCH_ALLOWLIST="127.0.0.1")
    assert done.returncode == 0, done.stderr
    said = lines_to(done.stdout, "admin")
    assert said[1] == "[admin] F1 added to News, checking it… I'll tell you what I find."
    assert said[2] == "[admin] F1 in News works: ACME News, 2 entries found (2 new)."
    listing = said[3]
    assert f"{site}/blog/feed.xml" in listing
    assert "entries: 2" in listing
    assert "last error: none" in listing
    posts = said[4]
    assert "Second poster" in posts
    assert "First poster" in posts
    # The acceptance of issue 7: the entries are in the digest, once.
    digest, again = said[5], said[6]
    assert "Second poster" in digest
    assert "First poster" in digest
    assert "poster" not in again
