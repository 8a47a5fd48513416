"""The visible label of a shared link: its preview title with the real domain beside it.

A page's title is whatever its author wrote, and it becomes the text people click. A
page at http://evil.example/login titled "https://www.bank.example/login" would show as
a link to the bank. So every renderer (live posts, items, digests, search hits, the App
Home) labels a link with `link_label`: a title that is itself an address (a URL, or a
domain name with or without a path) is dropped and the URL is shown instead; any other
title is followed by the host the link really goes to, "Title (evil.example)". Hosts are
shown in their ASCII (punycode) form, so a look-alike from another script shows as the
"xn--" name it is.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from urllib.parse import urlsplit

# A scheme ("https:", "mailto:", "javascript:" ...) followed by anything: an address.
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:(//)?\S", re.IGNORECASE)
# A host name (any script: look-alikes are words too), optionally with a port, a path, a
# query or a fragment, and nothing else: "bank.example", "www.bank.example/login",
# "xn--bnk-8cd.example:443/". Its last label must start with a letter, so "3.14" or
# "v1.2" stay titles; "Node.js" does not (a title that could be a host name is dropped).
_HOST_LIKE = re.compile(
    r"^(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_][\w-]*\.?(?::\d+)?(?:[/?#]\S*)?$", re.UNICODE
)
# Dots that IDNA reads as dots ("bank。example" is bank.example).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# An IPv4 or bracketed IPv6 address, also with a port or a path.
_IP_LIKE = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:.]+\])(?::\d+)?(?:[/?#]\S*)?$", re.I)


def link_host(url: str) -> str | None:
    """The host a URL goes to, as shown beside a title: lower case, ASCII (IDN hosts in
    punycode), without a leading "www."; None when the URL has none."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:  # an unbalanced "[" in the host, say
        return None
    if not host:
        return None
    # Not a valid IDN: shown as it is (the renderers escape it).
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii")
    return host.removeprefix("www.")


def looks_like_address(text: str) -> bool:
    """Whether a title reads as an address (a URL, a domain, an IP address) rather than
    as words: such a title could pose as another link target."""
    flat = text.translate(_DOTS).strip().strip("<>\"'()«»“”‘’").strip()
    if not flat or any(c.isspace() for c in flat):
        return False
    return bool(_SCHEME.match(flat) or _HOST_LIKE.match(flat) or _IP_LIKE.match(flat))


def link_label(url: str, title: str | None, *, limit: int | None = None) -> str:
    """The text a link to `url` shows: its title and real host, "Title (host)"; the URL
    itself where there is no title, the title is the URL or any other address, or the
    URL has no host. `limit` shortens the title (never the host) to fit that length."""
    # Invisible format characters (bidi overrides, zero-width joiners) could turn the
    # host beside the title around or hide an address in it: they go.
    visible = "".join(c for c in title or "" if unicodedata.category(c) != "Cf")
    text = " ".join(visible.split())
    host = link_host(url)
    if not text or text == url or host is None or looks_like_address(text):
        return url
    suffix = f" ({host})"
    if limit is not None and len(text) + len(suffix) > limit:
        room = max(limit - len(suffix) - 1, 1)
        text = text[:room].rstrip() + "…"
    return text + suffix
