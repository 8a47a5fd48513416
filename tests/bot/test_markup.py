"""The markup subset: user text stays literal, bold/italic/link/list/quote render."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.markup import Block, Markup, Span, bold, esc, italic, link, parse, to_html, to_plain

# Text that is rich in the characters the markup gives a meaning to.
_SPECIALS = [*"*_[]()\\>-# \t!:/.`~|<>&\"'", "**", "__", "- ", "> ", "](", "\\\\"]
_LINE = st.lists(st.sampled_from(_SPECIALS) | st.text(max_size=3), max_size=20).map("".join)
_SINGLE_LINE = _LINE.filter(lambda s: "\n" not in s)
_MULTI_LINE = st.lists(_SINGLE_LINE, min_size=1, max_size=6).map("\n".join)


def texts(blocks: list[Block]) -> list[str]:
    return ["".join(s.text for s in b.spans) for b in blocks]


# --- esc: what users type stays as typed ------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "**not bold**",
        "__not italic__",
        "snake_case_name and 2*3*4",
        "[not a link](https://example.com)",
        "(parens) [brackets]",
        "- not a list item",
        "> not a quote",
        ">",
        "-",
        "back\\slash \\*",
        "C:\\temp\\new",
        "line one\n- two\n> three\n\\four",
        "",
    ],
)
def test_escaped_text_comes_out_as_typed(typed: str) -> None:
    assert to_plain(esc(typed)) == typed
    blocks = parse(esc(typed))
    assert [b.kind for b in blocks] == ["p"] * len(typed.split("\n"))
    assert texts(blocks) == typed.split("\n")
    assert all(not (s.bold or s.italic or s.url) for b in blocks for s in b.spans)


@given(_SINGLE_LINE)
@example("- a")
@example("> a")
@example("\\")
def test_esc_round_trips_one_line(typed: str) -> None:
    assert to_plain(esc(typed)) == typed
    assert texts(parse(esc(typed))) == [typed]


@given(_MULTI_LINE)
@example("a\n- b\n> c\n-\n>")
def test_esc_round_trips_many_lines(typed: str) -> None:
    assert to_plain(esc(typed)) == typed
    blocks = parse(esc(typed))
    assert {b.kind for b in blocks} <= {"p"}
    assert texts(blocks) == typed.split("\n")


@given(st.text())
def test_esc_round_trips_any_text(typed: str) -> None:
    assert to_plain(esc(typed)) == typed


@given(_MULTI_LINE)
def test_html_of_escaped_text_is_only_escaped_text(typed: str) -> None:
    out = to_html(esc(typed))
    for tag in ("<b>", "<i>", "<a ", "<blockquote>"):
        assert tag not in out
    assert out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == typed


def test_esc_leaves_markup_alone() -> None:
    already = Markup("**bold**")
    assert esc(already) is already
    assert esc(esc("*")) == esc("*")  # the result of esc is Markup, not escaped twice


def test_escaped_text_inside_markup_stays_literal() -> None:
    text = Markup(f"{bold('Group')}: {esc('**x** [y](z)')}")
    assert to_plain(text) == "Group: **x** [y](z)"
    assert to_html(text) == "<b>Group</b>: **x** [y](z)"


# --- markup renders ---------------------------------------------------------------------


def test_bold_and_italic() -> None:
    text = Markup("plain **bold** __italic__ **__both__**")
    assert parse(text) == [
        Block(
            "p",
            (
                Span("plain "),
                Span("bold", bold=True),
                Span(" "),
                Span("italic", italic=True),
                Span(" "),
                Span("both", bold=True, italic=True),
            ),
        )
    ]
    assert to_plain(text) == "plain bold italic both"
    assert to_html(text) == "plain <b>bold</b> <i>italic</i> <b><i>both</i></b>"


def test_helpers_escape_their_text() -> None:
    assert to_plain(bold("a*b")) == "a*b"
    assert to_html(bold("a*b")) == "<b>a*b</b>"
    assert to_html(italic("x_y [z]")) == "<i>x_y [z]</i>"


def test_bold_over_several_lines_stays_bold_and_literal() -> None:
    blocks = parse(bold("first\n- second\n\nthird"))
    assert [b.kind for b in blocks] == ["p", "p", "p", "p"]
    assert texts(blocks) == ["first", "- second", "", "third"]
    assert all(s.bold for b in blocks for s in b.spans)


def test_link() -> None:
    text = link("https://example.com/a_b", "The *best* [poster]")
    assert parse(text) == [
        Block("p", (Span("The *best* [poster]", url="https://example.com/a_b"),))
    ]
    assert to_plain(text) == "The *best* [poster] (https://example.com/a_b)"
    assert to_html(text) == '<a href="https://example.com/a_b">The *best* [poster]</a>'


def test_link_without_label_shows_the_url_once() -> None:
    url = "https://example.com/x"
    assert to_plain(link(url)) == url
    assert to_plain(link(url, url)) == url
    assert to_plain(link(url, "")) == url
    assert to_html(link(url, "")) == f'<a href="{url}">{url}</a>'


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/wiki/Foo_(bar)",
        "https://example.com/a b",
        "https://example.com/a\tb\nc",
        "https://example.com/C:\\dir",
        "https://example.com/?q=[x]&y=*z*",
    ],
)
def test_link_urls_cannot_break_out(url: str) -> None:
    text = Markup(f"before {link(url, 'label')} after")
    [block] = parse(text)
    assert [s.text for s in block.spans] == ["before ", "label", " after"]
    [linked] = [s for s in block.spans if s.url]
    assert not any(ch.isspace() or ch in ")\\" for ch in linked.url or "")


def test_link_label_is_one_line() -> None:
    [block] = parse(link("https://example.com", "Title\nwith  a break"))
    assert block.spans == (Span("Title with a break", url="https://example.com"),)


def test_bold_link() -> None:
    text = Markup(f"**{link('https://x.test', 'go')}**")
    assert parse(text)[0].spans == (Span("go", bold=True, url="https://x.test"),)
    assert to_html(text) == '<b><a href="https://x.test">go</a></b>'


def test_list_and_quote() -> None:
    text = Markup("Head\n- one\n- **two**\n> said\n>\n-no")
    assert [b.kind for b in parse(text)] == ["p", "li", "li", "quote", "quote", "p"]
    assert to_plain(text) == "Head\n• one\n• two\n> said\n> \n-no"
    assert to_html(text) == (
        "Head\n• one\n• <b>two</b>\n<blockquote>said</blockquote>\n<blockquote></blockquote>\n-no"
    )


# --- HTML is safe -----------------------------------------------------------------------


def test_html_escapes_text() -> None:
    out = to_html(esc("<script>alert('x') & \"y\"</script>"))
    assert out == "&lt;script&gt;alert('x') &amp; \"y\"&lt;/script&gt;"


def test_html_escapes_quotes_and_brackets_in_urls() -> None:
    out = to_html(link("https://example.com/?a=\"x\"&b=<y>&c='z'", "<label>"))
    assert out == (
        '<a href="https://example.com/?a=&quot;x&quot;&amp;b=&lt;y&gt;&amp;c=&#x27;z&#x27;">'
        "&lt;label&gt;</a>"
    )


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "vbscript:x"]
)
def test_html_does_not_link_unsafe_schemes(url: str) -> None:
    out = to_html(link(url, "click"))
    assert "<a" not in out
    assert out.startswith("click (")


@pytest.mark.parametrize("url", ["http://x.test", "HTTPS://x.test", "mailto:a@x.test", "tg://x"])
def test_html_links_safe_schemes(url: str) -> None:
    assert to_html(link(url, "go")).startswith('<a href="')
