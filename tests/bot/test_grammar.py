"""The command grammar: tokenizing, the specs of DESIGN.md, parsing and its errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot import grammar
from bot.errors import UserError
from bot.grammar import QUOTES, SPECS, Spec, Token, parse, spec, tokenize


def values(text: str) -> list[str]:
    return [t.value for t in tokenize(text)]


def fails(name: str, arguments: str = "") -> UserError:
    with pytest.raises(UserError) as info:
        parse(name, arguments)
    return info.value


# --- every usage line parses a valid example ------------------------------------------


def _example(s: Spec, *, full: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Argument text for `s` (all optional parts too when `full`), and what it parses to."""
    words: list[str] = list(s.path[1:])
    args: dict[str, Any] = {}
    for p in s.params:
        if not p.required and not full:
            args[p.name] = None
        elif p.kind == "int":
            words.append("3")
            args[p.name] = 3
        elif p.kind == "choice":
            words.append(p.choices[-1].upper())  # choices ignore case
            args[p.name] = p.choices[-1]
        elif p.kind == "rest":
            words.append("two  words")
            args[p.name] = "two  words"
        else:
            words.append(f"x-{p.name}")
            args[p.name] = f"x-{p.name}"
    flags: dict[str, Any] = {}
    if full:
        groups_seen: set[str] = set()
        for f in s.flags.values():
            if f.group:
                if f.group in groups_seen:
                    continue
                groups_seen.add(f.group)
            words.append("--" + f.name)
            if f.value == "none":
                flags[f.name] = True
            elif f.value == "int":
                words.append("7")
                flags[f.name] = 7
            elif f.value == "words":
                words.append("a b")
                flags[f.name] = ["a", "b"]
            else:
                words.append("v")
                flags[f.name] = "v"
    return " ".join(words), args, flags


@pytest.mark.parametrize("full", [False, True], ids=["required", "everything"])
@pytest.mark.parametrize("s", SPECS, ids=lambda s: s.key)
def test_every_usage_line_parses_an_example(s: Spec, full: bool) -> None:
    text, args, flags = _example(s, full=full)
    cmd = parse(s.name, text)
    assert cmd.spec is s
    assert cmd.key == s.key
    assert cmd.args == args
    assert cmd.flags == flags


@pytest.mark.parametrize(
    ("line", "key", "args", "flags"),
    [
        ("help", "help", {"command": None}, {}),
        ("help group create", "help", {"command": "group create"}, {}),
        ("groups", "groups", {}, {}),
        ("group create mkt", "group create", {"slug": "mkt", "name": None}, {}),
        (
            "group create mkt Marketing  Team --secret --externals",
            "group create",
            {"slug": "mkt", "name": "Marketing  Team"},
            {"secret": True, "externals": True},
        ),
        ("join marketing", "join", {"group": "marketing"}, {}),
        ("add @alice marketing", "add", {"person": "@alice", "group": "marketing"}, {}),
        (
            "share marketing https://example.com/p New poster",
            "share",
            {"group": "marketing", "content": "https://example.com/p New poster"},
            {},
        ),
        ("items marketing 5", "items", {"group": "marketing", "n": 5}, {}),
        ("comment #12 Nice!", "comment", {"item": "#12", "text": "Nice!"}, {}),
        ("notify marketing Weekly", "notify", {"group": "marketing", "mode": "weekly"}, {}),
        (
            "feed add news https://example.com/rss --include a b c --exclude d --to-rooms",
            "feed add",
            {"group": "news", "url": "https://example.com/rss"},
            {"include": ["a", "b", "c"], "exclude": ["d"], "to-rooms": True},
        ),
        ("feed list", "feed list", {"group": None}, {}),
        ("feed remove F3", "feed remove", {"feed": "F3"}, {}),
        ("digest now", "digest now", {}, {}),
        ("digest daily 07:30", "digest daily", {"time": "07:30"}, {}),
        ("digest weekly friday 16:00", "digest weekly", {"day": "friday", "time": "16:00"}, {}),
        ("digest off", "digest off", {}, {}),
        (
            "propose newsroom Big news today --item #4 --at 09:00",
            "propose",
            {"outlet": "newsroom", "text": "Big news today"},
            {"item": "#4", "at": "09:00"},
        ),
        ("approve P12", "approve", {"proposal": "P12", "comment": None}, {}),
        (
            "reject P12 not yet, sorry",
            "reject",
            {"proposal": "P12", "reason": "not yet, sorry"},
            {},
        ),
        ("search poster  station", "search", {"words": "poster  station"}, {}),
        (
            "invite partner north,south --uses 5 --days 30",
            "invite",
            {"role": "partner", "groups": "north,south"},
            {"uses": 5, "days": 30},
        ),
        ("redeem Ab3dE6gH9k", "redeem", {"code": "Ab3dE6gH9k"}, {}),
        ("link", "link", {"code": None}, {}),
        ("settings language DE", "settings language", {"language": "de"}, {}),
        (
            "settings timezone America/New_York",
            "settings timezone",
            {"zone": "America/New_York"},
            {},
        ),
        ("role @bob gatekeeper", "role", {"person": "@bob", "role": "gatekeeper"}, {}),
        ("bridge gatekeepers", "bridge", {"group": "gatekeepers"}, {}),
        ("audit 20", "audit", {"n": 20}, {}),
        ("start Ab3dE6gH9k", "start", {"code": "Ab3dE6gH9k"}, {}),
    ],
)
def test_design_examples(line: str, key: str, args: dict[str, Any], flags: dict[str, Any]) -> None:
    name, _, arguments = line.partition(" ")
    cmd = parse(name, arguments)
    assert (cmd.key, cmd.args, cmd.flags) == (key, args, flags)


def test_every_design_command_has_a_spec() -> None:
    keys = {s.key for s in SPECS}
    assert keys >= {
        "help", "groups", "group create", "join", "leave", "members", "add", "remove",
        "share", "items", "comment", "notify", "feed add", "feed list", "feed remove",
        "digest now", "digest daily", "digest weekly", "digest off", "outlets", "propose",
        "pending", "approve", "reject", "revise", "withdraw", "search", "invite", "invites",
        "revoke", "redeem", "link", "whoami", "settings language", "settings timezone",
        "role", "bridge", "audit",
    }  # fmt: skip


def test_usage_lines_read_like_design() -> None:
    shown = {s.key: s.usage_line for s in SPECS}
    assert shown["notify"] == "notify <group> instant|daily|weekly|mute|mail [--feeds]"
    assert shown["items"] == "items <group> [n]"
    assert shown["invite"].startswith("invite member|guest|partner <groups> [--uses <n>]")
    assert ":" not in shown["invite"] + shown["audit"] + shown["settings language"]


def test_hidden_start_is_not_in_the_visible_grammar() -> None:
    assert [s.key for s in SPECS if s.hidden] == ["start"]


def test_spec_rejects_a_literal_after_parameters() -> None:
    with pytest.raises(ValueError, match="literal after parameters"):
        spec("share <group> now")


# --- tokenizing -------------------------------------------------------------------------


def test_spaces_split_words() -> None:
    assert values("  one two\tthree\nfour  ") == ["one", "two", "three", "four"]
    assert tokenize("") == []
    assert tokenize(" \n\t ") == []


def test_double_quotes_group_words() -> None:
    tokens = tokenize('say "two  words" end')
    assert [t.value for t in tokens] == ["say", "two  words", "end"]
    assert [t.quoted for t in tokens] == [False, True, False]


@pytest.mark.parametrize(
    "text",
    ["“two words”", "„two words“", "„two words”", '"two words”', '“two words"'],
)
def test_typographic_quotes_group_words(text: str) -> None:
    assert values(f"a {text} b") == ["a", "two words", "b"]


def test_quotes_inside_a_word_join_it() -> None:
    assert values('x"a b"y z') == ["xa by", "z"]
    assert values('""') == [""]


def test_apostrophes_are_ordinary_characters() -> None:
    assert values("Competitor's new poster") == ["Competitor's", "new", "poster"]
    assert values("it's ‘quoted’ ’n’ ‚so‘ `too`") == ["it's", "‘quoted’", "’n’", "‚so‘", "`too`"]


def test_apostrophes_keep_a_text_whole() -> None:
    cmd = parse("share", "marketing Competitor's new poster")
    assert cmd.args["content"] == "Competitor's new poster"
    cmd = parse("comment", "12 Don't miss it, it's Bob's")
    assert cmd.args["text"] == "Don't miss it, it's Bob's"


@pytest.mark.parametrize("text", ['"open', 'a "b c', "„nicht zu", "“", 'ok "x" "y'])
def test_unclosed_quote(text: str) -> None:
    with pytest.raises(UserError) as info:
        tokenize(text)
    assert info.value.key == "error.unclosed_quote"
    assert fails("share", f"g {text}").key == "error.unclosed_quote"


def _outside_quotes_reference(text: str) -> str:
    """All characters but quote marks, and but spaces outside quotes."""
    out, inside = [], False
    for ch in text:
        if ch in QUOTES:
            inside = not inside
        elif inside or not ch.isspace():
            out.append(ch)
    return "".join(out)


def _tokenize_or_error(text: str) -> list[Token] | UserError:
    try:
        return tokenize(text)
    except UserError as err:  # anything else fails the test
        return err


_TEXT = st.text(
    alphabet=st.sampled_from(list("ab'’*-\\#@ \t\n\u00a0\u2003\"“”„")) | st.characters(),
    max_size=60,
)


@given(_TEXT)
@example('a "b  c" d\'s')
@example("\u00a0x\u2003y\u3000")
def test_tokenize_raises_only_user_errors_and_loses_nothing(text: str) -> None:
    tokens = _tokenize_or_error(text)
    if isinstance(tokens, UserError):
        assert tokens.key == "error.unclosed_quote"
        assert sum(ch in QUOTES for ch in text) % 2 == 1
        return
    assert "".join(t.value for t in tokens) == _outside_quotes_reference(text)
    for t in tokens:
        raw = text[t.start : t.end]
        assert "".join(ch for ch in raw if ch not in QUOTES) == t.value
        assert t.quoted == any(ch in QUOTES for ch in raw)
    if not any(ch in QUOTES for ch in text):
        assert [t.value for t in tokens] == text.split()


# --- rest parameters keep the text as typed ---------------------------------------------


def test_rest_keeps_spacing_and_newlines() -> None:
    text = "First line  with  spaces\n\n- a list\n  indented\tand tabbed"
    cmd = parse("share", f"marketing {text}")
    assert cmd.args["content"] == text
    cmd = parse("comment", f"#3   {text}   \n")
    assert cmd.args["text"] == text


def test_rest_keeps_quotes_inside_a_text_but_a_single_quoted_value_is_unquoted() -> None:
    assert parse("share", 'g He said "hi"  twice').args["content"] == 'He said "hi"  twice'
    assert parse("group", 'create mkt "Marketing  Team" --closed').args["name"] == (
        "Marketing  Team"
    )


def test_rest_ends_before_trailing_flags() -> None:
    cmd = parse("propose", "newsroom  Line one\nline  two  --at 10:00")
    assert cmd.args["text"] == "Line one\nline  two"
    assert cmd.flags == {"at": "10:00"}


def test_rest_around_a_flag_is_joined() -> None:
    cmd = parse("propose", "newsroom Hello --item 4 world")
    assert cmd.args["text"] == "Hello world"
    assert cmd.flags == {"item": "4"}


def test_dashes_in_commands_without_options_are_text() -> None:
    cmd = parse("share", "g --not-an-option -- and - more")
    assert cmd.args["content"] == "--not-an-option -- and - more"


def test_quoted_dashes_are_not_options() -> None:
    cmd = parse("propose", 'newsroom "--item" is text')
    assert cmd.args["text"] == '"--item" is text'
    assert cmd.flags == {}


# --- options ----------------------------------------------------------------------------


def test_exclusive_options() -> None:
    assert parse("group", "create mkt --closed").flags == {"closed": True}
    assert parse("group", "create mkt --SECRET").flags == {"secret": True}
    err = fails("group", "create mkt --closed --secret")
    assert err.key == "error.exclusive_options"
    assert err.params == {"options": "--closed|--secret", "usage_of": "group create"}


def test_int_option() -> None:
    assert parse("invite", "member mkt --uses 12").flags == {"uses": 12}
    err = fails("invite", "member mkt --uses twelve")
    assert err.key == "error.not_a_number"
    assert err.params["value"] == "twelve"
    assert err.params["param"] == "--uses"
    assert err.params["usage_of"] == "invite"
    assert fails("invite", "member mkt --days -1").key == "error.not_a_number"


def test_words_option_takes_words_until_the_next_known_option() -> None:
    cmd = parse("feed", "add g https://x.test/rss --include price  sale offer --to-rooms")
    assert cmd.flags == {"include": ["price", "sale", "offer"], "to-rooms": True}
    assert cmd.args == {"group": "g", "url": "https://x.test/rss"}
    cmd = parse("feed", 'add g u --exclude "job ad" --include --none-- x')
    assert cmd.flags == {"exclude": ["job ad"], "include": ["--none--", "x"]}


def test_options_may_come_anywhere() -> None:
    cmd = parse("feed", "add --to-rooms g u --include a")
    assert cmd.args == {"group": "g", "url": "u"}
    assert cmd.flags == {"to-rooms": True, "include": ["a"]}
    cmd = parse("invite", "--uses 2 guest mkt")
    assert cmd.args == {"role": "guest", "groups": "mkt"}
    assert cmd.flags == {"uses": 2}


def test_unknown_option() -> None:
    err = fails("group", "create mkt --private")
    assert err.key == "error.unknown_option"
    assert err.params == {"option": "--private", "usage_of": "group create"}


@pytest.mark.parametrize(
    ("name", "arguments", "option"),
    [
        ("invite", "member mkt --uses", "--uses"),
        ("propose", "newsroom hi --item", "--item"),
        ("propose", "newsroom hi --item --at 10:00", "--item"),
        ("feed", "add g u --include", "--include"),
        ("feed", "add g u --include --to-rooms", "--include"),
    ],
)
def test_option_without_value(name: str, arguments: str, option: str) -> None:
    err = fails(name, arguments)
    assert err.key == "error.option_needs_value"
    assert err.params["option"] == option


# --- argument errors --------------------------------------------------------------------


def test_missing_argument() -> None:
    err = fails("join")
    assert err.key == "error.missing_argument"
    assert err.params == {"param": "group", "usage_of": "join"}
    assert fails("add", "@alice").params["param"] == "group"
    assert fails("share", "marketing").params["param"] == "content"
    assert fails("group", "create").params["param"] == "slug"


def test_too_many_arguments() -> None:
    err = fails("join", "marketing sales")
    assert err.key == "error.too_many_arguments"
    assert err.params == {"extra": "sales", "usage_of": "join"}
    assert fails("digest", "now please").params["extra"] == "please"
    assert fails("groups", '"all of them"').params["extra"] == "all of them"


def test_bad_choice() -> None:
    err = fails("notify", "marketing hourly")
    assert err.key == "error.bad_choice"
    assert err.params == {
        "value": "hourly",
        "choices": "instant, daily, weekly, mute, mail",
        "usage_of": "notify",
    }
    assert fails("settings", "language fr").params["choices"] == "en, de"
    assert fails("role", "@bob boss").key == "error.bad_choice"


@pytest.mark.parametrize("value", ["ten", "1.5", "-2", "#3"])
def test_not_a_number(value: str) -> None:
    err = fails("items", f"marketing {value}")
    assert err.key == "error.not_a_number"
    assert err.params == {"param": "n", "value": value, "usage_of": "items"}


# --- commands and subcommands -----------------------------------------------------------


def test_unknown_command_suggests_a_close_match() -> None:
    err = fails("jion", "marketing")
    assert err.key == "error.unknown_command_suggestion"
    assert err.params == {"command": "jion", "suggestion": "join"}
    assert fails("Gruops").params["suggestion"] == "groups"


def test_unknown_command_without_a_close_match() -> None:
    err = fails("xyzzy")
    assert err.key == "error.unknown_command"
    assert err.params == {"command": "xyzzy"}


@pytest.mark.parametrize(
    ("name", "arguments", "given"),
    [
        ("group", "foo bar", "foo"),
        ("digest", "", ""),
        ("settings", "", ""),
        ("feed", "edit", "edit"),
    ],
)
def test_unknown_subcommand(name: str, arguments: str, given: str) -> None:
    err = fails(name, arguments)
    assert err.key == "error.unknown_subcommand"
    assert err.params == {"command": name, "given": given}


def test_command_names_ignore_case() -> None:
    assert parse("JOIN", "marketing").key == "join"
    assert parse("Group", "CREATE mkt").key == "group create"
    assert parse("Settings", "Language EN").args == {"language": "en"}
    assert fails("DIGEST", "sometimes").params["command"] == "digest"
    assert grammar.specs_named("NoTiFy")[0].key == "notify"


def test_values_keep_their_case() -> None:
    assert parse("redeem", "AbCdE12345").args["code"] == "AbCdE12345"
    assert parse("share", "Marketing Hello World").args == {
        "group": "Marketing",
        "content": "Hello World",
    }


def test_first_word() -> None:
    assert grammar.first_word("  Join marketing") == "join"
    assert grammar.first_word(" \n ") == ""


def test_answers_naming_mail_addresses_are_private() -> None:
    """A held mail's sender, a newsletter's allowed senders: never answered into a room."""
    assert grammar.is_private("email", "release 3")
    assert grammar.is_private("email", "drop 3")
    assert grammar.is_private("newsletter", "lunch")
