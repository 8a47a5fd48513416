"""The small markup subset of neutral messages: bold, italic, link, list, quote.

    **bold**   __italic__   [label](https://url)
    - list item            (at a line start)
    > quoted line          (at a line start)

Text from users goes in through `esc()` (the i18n formatter does it for every
parameter), so nothing a user types becomes markup. Adapters render the parsed
blocks natively; `to_plain` and `to_html` serve the console, Telegram and Matrix.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

_SPECIAL = re.compile(r"([\\*_\[\]()])")
_LINE_START = re.compile(r"^([>-])", re.MULTILINE)


class Markup(str):
    """A string that is already markup: not escaped again when formatted in."""

    __slots__ = ()


_NEEDS_ESCAPE = re.compile(r"[\\*_\[\]()]|^[>-]", re.MULTILINE)


def esc(text: str) -> Markup:
    if isinstance(text, Markup):
        return text
    if _NEEDS_ESCAPE.search(text) is None:  # most values: a name, a number, a word
        return Markup(text)
    return Markup(_LINE_START.sub(r"\\\1", _SPECIAL.sub(r"\\\1", text)))


def _wrap(marker: str, text: str) -> Markup:
    # Emphasis ends with its line, so each line of a multi-line text gets its own markers.
    lines = esc(text).split("\n")
    return Markup("\n".join(f"{marker}{line}{marker}" if line else "" for line in lines))


def bold(text: str) -> Markup:
    return _wrap("**", text)


def italic(text: str) -> Markup:
    return _wrap("__", text)


_URL_UNSAFE = re.compile(r"[\s\\)]")


def link(url: str, label: str | None = None) -> Markup:
    """A link; the label is one line, and the URL is encoded so that it cannot end early."""
    safe_url = _URL_UNSAFE.sub(lambda m: quote(m.group(), safe=""), url)
    shown = " ".join((label if label is not None else url).split())
    return Markup(f"[{esc(shown)}]({safe_url})")


# --- parsed form -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    bold: bool = False
    italic: bool = False
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Block:
    kind: Literal["p", "li", "quote"]
    spans: tuple[Span, ...]


_TOKEN = re.compile(r"\\(.)|(\*\*)|(__)|\[((?:\\.|[^\]\\])*)\]\(([^)\s]*)\)", re.DOTALL)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def parse_inline(line: str) -> tuple[Span, ...]:
    spans: list[Span] = []
    buf: list[str] = []
    is_bold = is_italic = False

    def flush() -> None:
        if buf:
            spans.append(Span("".join(buf), is_bold, is_italic))
            buf.clear()

    pos = 0
    for m in _TOKEN.finditer(line):
        buf.append(line[pos : m.start()])
        pos = m.end()
        escaped, star, under, label, url = m.groups()
        if escaped is not None:
            buf.append(escaped)
        elif star:
            flush()
            is_bold = not is_bold
        elif under:
            flush()
            is_italic = not is_italic
        else:
            flush()
            spans.append(Span(_unescape(label) or url, is_bold, is_italic, url))
    buf.append(line[pos:])
    flush()
    return tuple(s for s in spans if s.text or s.url)


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    for line in text.split("\n"):
        if line.startswith("- "):
            blocks.append(Block("li", parse_inline(line[2:])))
        elif line.startswith("> ") or line == ">":
            blocks.append(Block("quote", parse_inline(line[2:])))
        else:
            blocks.append(Block("p", parse_inline(line)))
    return blocks


def plain_span(span: Span) -> str:
    if span.url and span.text != span.url:
        return f"{span.text} ({span.url})"
    return span.text


def to_plain(text: str) -> str:
    lines = []
    for block in parse(text):
        body = "".join(plain_span(s) for s in block.spans)
        prefix = {"p": "", "li": "• ", "quote": "> "}[block.kind]
        lines.append(prefix + body)
    return "\n".join(lines)


# Only these become clickable in HTML; any other scheme (javascript:, data:, ...) shows as text.
_SAFE_SCHEME = re.compile(r"(?:https?|mailto|tg):", re.IGNORECASE)


def html_span(span: Span) -> str:
    out = html.escape(span.text, quote=False)
    if span.url and _SAFE_SCHEME.match(span.url):
        out = f'<a href="{html.escape(span.url, quote=True)}">{out}</a>'
    elif span.url:
        out = html.escape(plain_span(span), quote=False)
    if span.italic:
        out = f"<i>{out}</i>"
    if span.bold:
        out = f"<b>{out}</b>"
    return out


def to_html(text: str) -> str:
    """Telegram- and Matrix-safe HTML (b, i, a, blockquote; lists as bullets)."""
    out: list[str] = []
    for block in parse(text):
        body = "".join(html_span(s) for s in block.spans)
        if block.kind == "li":
            out.append("• " + body)
        elif block.kind == "quote":
            out.append(f"<blockquote>{body}</blockquote>")
        else:
            out.append(body)
    return "\n".join(out)
