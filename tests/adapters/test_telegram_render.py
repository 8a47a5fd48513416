"""Telegram rendering: HTML that Telegram accepts, split within its limits; signed buttons."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

import adapters.telegram  # noqa: F401  (sets PTB_TIMEDELTA before telegram is imported)
from adapters.telegram.render import (
    MAX_CALLBACK_DATA,
    CallbackCodec,
    html_chunks,
    keyboard_rows,
    message_html,
    visible_length,
)
from bot.markup import bold, esc, italic, link
from bot.message import Button, Message, MessageField

TAGS = {"b", "i", "a", "blockquote"}


class _Checker(HTMLParser):
    """Parses Telegram HTML as Telegram does: only its tags, balanced; counts the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TAGS, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, tag
        assert self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible(chunk: str) -> str:
    checker = _Checker()
    checker.feed(chunk)
    checker.close()
    assert not checker.stack, f"unclosed {checker.stack}"
    return "".join(checker.text)


def test_title_text_and_fields_render_as_html() -> None:
    message = Message(
        title=esc("bob in Marketing & Sales"),
        text=esc("Poster <b>not bold</b>") + "\n" + link("https://example.com/?a=1&b=2", "Poster"),
        fields=(MessageField(label="Votes", value="2"),),
    )
    [chunk] = message_html(message)
    assert chunk.splitlines() == [
        "<b>bob in Marketing &amp; Sales</b>",
        "Poster &lt;b&gt;not bold&lt;/b&gt;",
        '<a href="https://example.com/?a=1&amp;b=2">Poster</a>',
        "<b>Votes:</b> 2",
    ]


def test_unsafe_link_schemes_stay_text() -> None:
    [chunk] = html_chunks(link("javascript:alert(1)", "click"))
    assert "<a " not in chunk
    assert "javascript:alert(1" in chunk


def test_long_text_is_split_between_lines_within_4096() -> None:
    lines = [esc(f"line {i} ") + bold("x" * 50) for i in range(200)]
    chunks = html_chunks("\n".join(lines))
    assert len(chunks) > 1
    seen = []
    for chunk in chunks:
        text = visible(chunk)
        assert visible_length(text) <= 4096
        seen += text.split("\n")
    assert seen == [f"line {i} " + "x" * 50 for i in range(200)]


def test_one_huge_line_is_split_between_words_and_keeps_formatting() -> None:
    words = [f"wörd{i}" for i in range(2000)]
    chunks = html_chunks(bold(" ".join(words)))
    assert len(chunks) >= 3
    rebuilt = ""
    for chunk in chunks:
        assert chunk.startswith("<b>")
        assert chunk.endswith("</b>")
        text = visible(chunk)
        assert visible_length(text) <= 4096
        rebuilt += text
    assert rebuilt.split() == words


def test_a_word_longer_than_a_message_is_cut_inside() -> None:
    chunks = html_chunks(esc("y" * 9000))
    assert [len(visible(c)) for c in chunks] == [4096, 4096, 808]


def test_length_counts_utf16_units_like_telegram() -> None:
    # Emoji outside the BMP count twice.
    chunks = html_chunks(esc("😀" * 3000))
    assert all(visible_length(visible(c)) <= 4096 for c in chunks)
    assert "".join(visible(c) for c in chunks) == "😀" * 3000


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])
    | st.sampled_from("\n <&>\"'*_[]()"),
    max_size=300,
)


@given(
    st.lists(st.tuples(_TEXT, st.sampled_from(["plain", "bold", "italic", "link"])), max_size=30)
)
def test_any_text_renders_to_valid_html_within_the_limit(parts: list[tuple[str, str]]) -> None:
    pieces = []
    for text, style in parts:
        if style == "bold":
            pieces.append(bold(text))
        elif style == "italic":
            pieces.append(italic(text))
        elif style == "link":
            pieces.append(link("https://example.com/x", text.replace("\n", " ") or "x"))
        else:
            pieces.append(esc(text))
    for chunk in html_chunks("".join(pieces), limit=200):
        assert visible_length(visible(chunk)) <= 200
        assert html.unescape(chunk) is not None


def test_caption_limit() -> None:
    chunks = message_html(Message(text=esc("z " * 800)), 1024)
    assert len(chunks) == 2
    assert all(visible_length(visible(c)) <= 1024 for c in chunks)


# --- buttons ----------------------------------------------------------------------------


def test_callback_data_is_compact_and_signed_per_chat() -> None:
    codec = CallbackCodec(b"secret")
    button = Button(label="Marketing", action="share.pick", value="123456:789")
    data = codec.encode(42, button)
    assert data is not None
    assert len(data.encode()) <= MAX_CALLBACK_DATA
    assert codec.decode(42, data) == ("share.pick", "123456:789")
    # the same data pressed in another chat, or altered, or signed with another key: refused
    assert codec.decode(43, data) is None
    assert codec.decode(42, data.replace("789", "788")) is None
    assert CallbackCodec(b"other").decode(42, data) is None
    assert codec.decode(42, "share.pick|1:1") is None
    assert codec.decode(42, "") is None


def test_callback_data_too_long_is_refused() -> None:
    codec = CallbackCodec(b"k")
    assert codec.encode(1, Button(label="x", action="a", value="v" * 60)) is None
    assert codec.encode(1, Button(label="x", action="a|b", value="v")) is None


def test_keyboard_rows_keep_short_labels_together() -> None:
    def b(label: str) -> Button:
        return Button(label=label, action="a", value=label)

    rows = keyboard_rows((b("Comment"), b("👍")))
    assert [[x.label for x in row] for row in rows] == [["Comment", "👍"]]
    long = keyboard_rows(tuple(b(f"A rather long group name {i}") for i in range(3)))
    assert [len(r) for r in long] == [1, 1, 1]


@pytest.mark.parametrize("n", [1, 4, 7])
def test_keyboard_rows_never_exceed_three(n: int) -> None:
    rows = keyboard_rows(tuple(Button(label=str(i), action="a", value=str(i)) for i in range(n)))
    assert all(len(r) <= 3 for r in rows)
    assert sum(len(r) for r in rows) == n


def test_plain_text_never_carries_raw_tags() -> None:
    [chunk] = html_chunks(esc("<script>alert('x')</script> & co"))
    assert re.search(r"<(?!/?(b|i|a|blockquote)\b)", chunk) is None
