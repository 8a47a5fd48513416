"""The command grammar, the same on every messenger: tokenizing, specs, parsing.

Each command is declared once by its usage line; the parser and the help text both
come from it. Arguments are split on spaces; only double quotes group words
(typographic “ ” „ count as double quotes, since phones type them; apostrophes are
ordinary characters).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bot import when, words
from bot.errors import UserError

QUOTES = frozenset('"“”„')


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    start: int
    end: int
    quoted: bool = False


_WORD = re.compile(r"\S+")


def tokenize(text: str) -> list[Token]:
    if QUOTES.isdisjoint(text):  # the usual case: words between white space
        return [Token(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, buf, quoted = i, [], False
        while i < n and not text[i].isspace():
            if text[i] in QUOTES:
                quoted = True
                i += 1
                while i < n and text[i] not in QUOTES:
                    buf.append(text[i])
                    i += 1
                if i >= n:
                    raise UserError("error.unclosed_quote")
                i += 1
            else:
                buf.append(text[i])
                i += 1
        tokens.append(Token("".join(buf), start, i, quoted))
    return tokens


ParamKind = Literal["word", "int", "choice", "rest", "time"]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: ParamKind
    required: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Flag:
    name: str  # without the dashes
    value: Literal["none", "word", "int", "words", "when"]
    group: str | None = None  # flags of one group exclude each other
    value_name: str = ""


@dataclass(frozen=True)
class Spec:
    path: tuple[str, ...]
    usage_line: str
    params: tuple[Param, ...]
    flags: dict[str, Flag] = field(default_factory=dict)
    hidden: bool = False
    # Its answer is for the asker alone (a code, a setting, what their rights let them
    # see): said in a shared room, it is answered in private (see Core.answer).
    private: bool = False

    @property
    def key(self) -> str:
        return " ".join(self.path)

    @property
    def name(self) -> str:
        return self.path[0]


_PIECE = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}|\S+")


def _param(text: str, required: bool) -> Param:
    name, _, kind = text.partition(":")
    if name.endswith("..."):
        return Param(name[:-3], "rest", required)
    if kind == "code":  # a code may be typed in groups with spaces: "ABCD EFGH JK"
        return Param(name, "rest", required)
    return Param(name, "int" if kind == "int" else "time" if kind == "time" else "word", required)


def spec(usage: str, *, hidden: bool = False, private: bool = False) -> Spec:
    """Builds a spec from a usage line such as `items <group> [n:int]`."""
    path: list[str] = []
    params: list[Param] = []
    flags: dict[str, Flag] = {}
    for piece in _PIECE.findall(usage):
        if piece.startswith("[--"):
            inner = piece[1:-1]
            names, _, value = inner.partition(" ")
            options = names.split("|")
            group = names if len(options) > 1 else None
            for option in options:
                kind: Literal["none", "word", "int", "words", "when"] = "none"
                value_name = value.strip("<>")
                if value:
                    kind = "words" if value_name.endswith("...") else "word"
                    if value_name.endswith(":int"):
                        kind = "int"
                    if value_name.endswith(":when"):
                        kind = "when"  # as many words as name a moment (bot/when.py)
                    value_name = value_name.split(":")[0].removesuffix("...")
                flags[option[2:]] = Flag(option[2:], kind, group, value_name)
        elif piece.startswith("<"):
            params.append(_param(piece[1:-1], True))
        elif piece.startswith("["):
            params.append(_param(piece[1:-1], False))
        elif piece.startswith("{"):
            name, _, choices = piece[1:-1].partition(":")
            params.append(Param(name, "choice", True, tuple(choices.split("|"))))
        else:
            if params:
                raise ValueError(f"literal after parameters in {usage!r}")
            path.append(piece)
    shown = re.sub(r"\{[^:}]*:([^}]*)\}", r"\1", usage)
    shown = re.sub(r":(?:int|time|when|code)(?=[>\]])", "", shown)
    return Spec(tuple(path), shown, tuple(params), flags, hidden, private)


# The whole grammar of DESIGN.md, in the order help shows it.
_USAGES = (
    "help [command...]",
    "cancel",
    "groups",
    "group create <slug> [name...] [--closed|--secret] [--externals]",
    "join <group>",
    "leave <group>",
    "members <group>",
    "add <person> <group>",
    "remove <person> <group>",
    "share <group> <content...>",
    "items <group> [n:int]",
    "comment <item> <text...>",
    "show <item>",
    "notify <group> {mode:instant|daily|weekly|mute|mail} [--feeds]",
    "feed add <group> <url> [--include <words...>] [--exclude <words...>] [--to-rooms]",
    "feed list [group]",
    "feed remove <feed>",
    "newsletter <group> [address]",
    "digest now",
    "digest daily <time:time>",
    "digest weekly <day> <time:time>",
    "digest off",
    "outlets",
    "propose <outlet> <text...> [--item <item>] [--at <time:when>]",
    "pending",
    "approve <proposal> [comment...]",
    "reject <proposal> <reason...>",
    "revise <proposal> <text...>",
    "withdraw <proposal>",
    "search <words...> [--page <n:int>]",
    "announce <groups> <text...> [--confirm] [--until <date:when>] [--item <item>]",
    "announcement <announcement> [format]",
    "poll <group> <question...> [--multi] [--anonymous] [--closes <moment:when>]",
    "invite {role:member|guest|partner} <groups> [--uses <n:int>] [--days <n:int>]",
    "invites",
    "revoke <code:code>",
    "redeem <code:code>",
    "link [code:code]",
    "whoami",
    "email <address...>",
    "email held",
    "email release <id:int>",
    "email drop <id:int>",
    "settings language {language:en|de}",
    "settings timezone <zone>",
    "settings digest {via:mail|messenger}",
    "role <person> {role:member|gatekeeper|admin}",
    "bridge <group>",
    "audit [n:int]",
    "outbox failed [n:int]",
    "outbox retry [id]",
    "admin web",
)
# Commands whose answers are for the asker alone: codes (link, invite), personal settings,
# and everything filtered by what the asker may see (a secret group's posts, an admin's
# log) — said in a shared room, everyone there would read it.
_PRIVATE = frozenset(
    {
        "admin web",
        "announcement",
        "groups",
        "members",
        "items",
        "show",
        "notify",
        "feed list",
        "digest now",
        "digest daily",
        "digest weekly",
        "digest off",
        "outlets",
        "pending",
        "search",
        "invite",
        "invites",
        "revoke",
        "redeem",
        "start",
        "link",
        "whoami",
        "email",
        "email held",
        # their answers name a held mail's sender or the allowed senders' addresses
        "email release",
        "email drop",
        "newsletter",
        "settings language",
        "settings timezone",
        "settings digest",
        "role",
        "audit",
        "outbox failed",
        "outbox retry",
    }
)


def _private(s: Spec) -> Spec:
    return replace(s, private=True) if s.key in _PRIVATE else s


SPECS: tuple[Spec, ...] = tuple(
    _private(s) for s in (*(spec(u) for u in _USAGES), spec("start [code:code]", hidden=True))
)
assert {s.key for s in SPECS} >= _PRIVATE, "a private command that the grammar lacks"

_BY_NAME: dict[str, list[Spec]] = {}
for _s in SPECS:
    _BY_NAME.setdefault(_s.name, []).append(_s)
# German names of commands ("teilen" for share, bot/words.py), as written and folded.
ALIASES = words.command_aliases(_BY_NAME)
COMMAND_NAMES = frozenset(_BY_NAME) | frozenset(ALIASES)


def canonical_name(name: str) -> str:
    """The command a typed name means: "Teilen" -> share; unknown names as they are."""
    lowered = name.lower()
    return ALIASES.get(lowered, ALIASES.get(words.fold(lowered), lowered))


def specs_named(name: str) -> list[Spec]:
    return _BY_NAME.get(canonical_name(name), [])


@dataclass(frozen=True)
class Command:
    spec: Spec
    args: dict[str, Any]
    flags: dict[str, Any]

    @property
    def key(self) -> str:
        return self.spec.key

    def arg(self, name: str) -> Any:
        return self.args.get(name)


def _usage_error(key: str, spec_: Spec, **params: Any) -> UserError:
    return UserError(key, usage_of=spec_.key, **params)


def _int(value: str, name: str, spec_: Spec) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _usage_error("error.not_a_number", spec_, param=name, value=value) from None
    if number < 0:
        raise _usage_error("error.not_a_number", spec_, param=name, value=value)
    return number


def _rest(tokens: list[Token], positional: set[int], first: int, text: str) -> str:
    chosen = [i for i in range(first, len(tokens)) if i in positional]
    if len(chosen) == 1 or any(i not in positional for i in range(chosen[0], chosen[-1] + 1)):
        return " ".join(tokens[i].value for i in chosen)
    return text[tokens[chosen[0]].start : tokens[chosen[-1]].end]


def parse(name: str, arguments: str) -> Command:
    """Parses `name` with its argument text; raises UserError with the usage on bad input."""
    candidates = specs_named(name)
    if not candidates:
        close = difflib.get_close_matches(name.lower(), sorted(COMMAND_NAMES), n=1)
        if close:
            raise UserError("error.unknown_command_suggestion", command=name, suggestion=close[0])
        raise UserError("error.unknown_command", command=name)
    tokens = tokenize(arguments)
    chosen = candidates[0]
    if len(candidates) > 1 or len(chosen.path) > 1:
        sub = words.subcommand(chosen.name, tokens[0].value) if tokens else ""
        matches = [s for s in candidates if s.path[1:2] == (sub,)]
        bare = [s for s in candidates if len(s.path) == 1]
        if not matches and bare:  # `email <address>` beside `email held`
            return _bind(bare[0], tokens, arguments)
        if not matches:
            given = tokens[0].value.lower() if tokens else ""
            raise UserError("error.unknown_subcommand", command=chosen.name, given=given)
        chosen = matches[0]
        tokens = tokens[len(chosen.path) - 1 :]
    return _bind(chosen, tokens, arguments)


def _bind(spec_: Spec, tokens: list[Token], text: str) -> Command:
    flags: dict[str, Any] = {}
    positional: list[int] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if spec_.flags and not tok.quoted and tok.value.startswith("--") and len(tok.value) > 2:
            flag = spec_.flags.get(tok.value[2:].lower())
            if flag is None:
                raise _usage_error("error.unknown_option", spec_, option=tok.value)
            if flag.group and any(
                f.group == flag.group and f.name in flags for f in spec_.flags.values()
            ):
                raise _usage_error("error.exclusive_options", spec_, options=flag.group)
            i += 1
            if flag.value == "none":
                flags[flag.name] = True
                continue
            values: list[str] = []
            if flag.value == "when":
                taken = _moment_words(tokens, i, spec_)
                if taken:
                    values, i = [" ".join(t.value for t in tokens[i : i + taken])], i + taken
            while i < len(tokens) and flag.value != "when":
                nxt = tokens[i]
                if (
                    not nxt.quoted
                    and nxt.value[2:].lower() in spec_.flags
                    and nxt.value[:2] == "--"
                ):
                    break
                values.append(nxt.value)
                i += 1
                if flag.value != "words":
                    break
            if not values:
                raise _usage_error("error.option_needs_value", spec_, option=tok.value)
            if flag.value == "int":
                flags[flag.name] = _int(values[0], "--" + flag.name, spec_)
            else:
                flags[flag.name] = values if flag.value == "words" else values[0]
            continue
        positional.append(i)
        i += 1

    args: dict[str, Any] = {}
    pos_set = set(positional)
    cursor = 0
    for param in spec_.params:
        if cursor >= len(positional):
            if param.required:
                raise _usage_error("error.missing_argument", spec_, param=param.name)
            args[param.name] = None
            continue
        tok = tokens[positional[cursor]]
        if param.kind == "rest":
            args[param.name] = _rest(tokens, pos_set, positional[cursor], text)
            cursor = len(positional)
        elif param.kind == "int":
            args[param.name] = _int(tok.value, param.name, spec_)
            cursor += 1
        elif param.kind == "choice":
            value = words.choice(tok.value, param.choices)
            if value is None:
                raise _usage_error(
                    "error.bad_choice", spec_, value=tok.value, choices=", ".join(param.choices)
                )
            args[param.name] = value
            cursor += 1
        elif param.kind == "time":  # "8 Uhr", "8 pm": the clock word after it belongs to it
            args[param.name] = tok.value
            cursor += 1
            if (
                cursor < len(positional)
                and words.fold(tokens[positional[cursor]].value) in CLOCK_WORDS
            ):
                args[param.name] += " " + tokens[positional[cursor]].value
                cursor += 1
        else:
            args[param.name] = tok.value
            cursor += 1
    if cursor < len(positional):
        raise _usage_error(
            "error.too_many_arguments", spec_, extra=tokens[positional[cursor]].value
        )
    return Command(spec_, args, flags)


CLOCK_WORDS = frozenset({"uhr", "h", "am", "pm", "o'clock", "oclock"})
_MOST_MOMENT_WORDS = 5  # "tomorrow at 9:30 pm", "nächsten Montag um 9 Uhr"


def _moment_words(tokens: list[Token], i: int, spec_: Spec) -> int:
    """How many tokens from i on name a moment together (the longest such run, up to
    the next option); 1 when none does (the handler then says what it expected)."""
    end = i
    while (
        end < len(tokens)
        and end - i < _MOST_MOMENT_WORDS
        and not (tokens[end].value[:2] == "--" and tokens[end].value[2:].lower() in spec_.flags)
    ):
        end += 1
    for stop in range(end, i, -1):
        if when.is_moment([t.value for t in tokens[i:stop]]):
            return stop - i
    return min(1, end - i)


def is_private(name: str, arguments: str) -> bool:
    """Whether the answer to this command is for the asker alone (unknown or malformed
    commands are not: their answer is an error message without anything personal)."""
    candidates = specs_named(name)
    if len(candidates) == 1 and len(candidates[0].path) == 1:
        return candidates[0].private
    sub = words.subcommand(candidates[0].name, first_word(arguments)) if candidates else ""
    chosen = [s for s in candidates if s.path[1:2] == (sub,)]
    if not chosen and sub:  # the bare form beside subcommands (`email <address>`)
        chosen = [s for s in candidates if len(s.path) == 1]
    return any(s.private for s in chosen)


def first_word(text: str) -> str:
    stripped = text.strip()
    return stripped.split(maxsplit=1)[0].lower() if stripped else ""
