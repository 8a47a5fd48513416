"""The catalogs agree with each other and with the code; formatting is safe and local."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import grammar, words
from bot.feeds import PROBLEM_KINDS as FEED_PROBLEMS
from bot.help import TASKS as HELP_TASKS
from bot.help import WHY as HELP_WHY
from bot.i18n import LANGUAGES, Translator, catalog, normalize_language
from bot.ids import ID_PREFIXES
from bot.markup import Markup, bold, to_plain
from bot.outlets import KINDS as OUTLET_KINDS
from bot.reasons import ADDRESS_KINDS
from bot.reasons import KEYS as REASON_KEYS
from store.models import NotifyMode, ProposalStatus, Role, Visibility

ROOT = Path(__file__).resolve().parents[2]
PLURAL_FORMS = {"zero", "one", "other"}


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def forms(value: Any) -> dict[str, str]:
    """A catalog value as {form: template}; a plain string is the single form ''."""
    return dict(value) if isinstance(value, dict) else {"": value}


# --- the two catalogs agree -------------------------------------------------------------


def test_catalogs_have_the_same_keys() -> None:
    en, de = set(catalog("en")), set(catalog("de"))
    assert sorted(en - de) == [], "missing in de.toml"
    assert sorted(de - en) == [], "missing in en.toml"


@pytest.mark.parametrize("key", sorted(catalog("en")))
def test_same_placeholders_and_plural_forms(key: str) -> None:
    en, de = forms(catalog("en")[key]), forms(catalog("de")[key])
    assert set(en) == set(de), "plural forms differ"
    for form, template in en.items():
        assert placeholders(template) == placeholders(de[form]), f"{key} {form}".strip()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_value_is_a_string_or_plural_table(language: str) -> None:
    for key, value in catalog(language).items():
        if isinstance(value, dict):
            assert set(value) <= PLURAL_FORMS, key
            assert "other" in value, key
            assert all(isinstance(v, str) for v in value.values()), key
        else:
            assert isinstance(value, str), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_formats(language: str) -> None:
    t = Translator(language)
    for key, value in catalog(language).items():
        for template in forms(value).values():
            params = dict.fromkeys(placeholders(template), "x")
            text = t(key, **{**params, "count": 2})
            assert "{" not in text, key
            assert to_plain(text).strip(), key


def test_german_uses_informal_lowercase_du() -> None:
    formal = re.compile(r"\b(Sie|Ihnen|Ihr|Ihre|Ihren|Ihrem|Ihrer|Ihres)\b")
    capital_du = re.compile(r"\b(Du|Dich|Dir|Dein|Deine|Deinen|Deinem|Deiner|Deines)\b")
    sentence_start = re.compile(r"(^|[.!?:]\s+|\n|\(|\{[a-z]+\}\s+)$")
    for key, value in catalog("de").items():
        for template in forms(value).values():
            assert not formal.search(template), f"{key}: {template}"
            for m in capital_du.finditer(template):
                before = template[: m.start()]
                assert sentence_start.search(before), f"{key}: capital {m.group()} mid-sentence"


def test_german_names_commands_by_their_german_names() -> None:
    """No English inside a German sentence (CONVERSATION.md): a command that has a German
    name ("beitreten") is named so in German texts, and so is its subcommand
    ("zusammenfassung täglich"); the grammar takes both in either language."""
    named = re.compile(r"\{prefix\}([a-zäöü]+)(?: ([a-zäöü]+))?")
    for key, value in catalog("de").items():
        for template in forms(value).values():
            for m in named.finditer(template):
                command, second = m.group(1), m.group(2)
                assert words.german_name(command) is None, f"{key}: {m.group()}"
                english = words.GERMAN_SUBCOMMANDS.get(command, {}).values()
                if key.startswith("help.example."):  # German at runtime (help.example)
                    continue
                assert second not in english, f"{key}: {m.group()}"


# --- every key the code uses exists -----------------------------------------------------

_STRING = r"""(f?)(["'])((?:(?!\2).)+)\2"""
# ctx.t("k"), t("k"), ctx.reply("k"), ctx.tell(person, "k"), self._hint("k"), UserError("k"),
# _usage_error("k"), also with a conditional: ctx.reply("a" if x else "b").
_CALL = re.compile(
    r"\b(?:t|reply|tell|_hint|UserError|_usage_error)\(\s*(?:[\w.]+,\s*)?"
    + _STRING
    + r"(?:\s+if\s[^\n]*?\selse\s+"
    + _STRING.replace(r"\2", r"\5")
    + ")?",
    re.DOTALL,
)
_KEY_ASSIGNED = re.compile(
    r"\bkey\s*=\s*" + _STRING + r"(?:\s+if\s[^\n]*?\selse\s+" + _STRING.replace(r"\2", r"\5") + ")?"
)

# The values an f-string key ranges over, by its shape with {} for the expression.
EXPANSIONS: dict[str, list[str]] = {
    "error.bad_{}_id": list(ID_PREFIXES),
    "role.name.{}": [r.value for r in Role],
    "role.tag.{}": [r.value for r in Role if r.is_external],
    "group.visibility.{}": [v.value for v in Visibility],
    "settings_menu.to_{}": ["en", "de"],
    "slack.settings.digest_{}": ["messenger", "mail"],
    "notify.{}": [m.value for m in NotifyMode],
    "reason_modal.{}": [
        f"{kind}_{part}"
        for kind in ("reject", "changes", "comment")
        for part in ("title", "submit", "label")
    ]
    + ["cancel", "placeholder", "comment_placeholder"],
    "notify.mode.{}": [m.value for m in NotifyMode],
    "help.{}": [s.key for s in grammar.SPECS],
    "language.{}": list(LANGUAGES),
    "status.{}": [s.value for s in ProposalStatus],  # of a proposal
    "outlets.kind.{}": list(OUTLET_KINDS),
    "outlets.{}": ["characters", "graphemes"],  # the units outlets measure in
    "prefix.{}": ["email"],  # the words for a messenger without a prefix (Core.prefix)
    "feeds.error.{}": list(FEED_PROBLEMS),
    "digest.day.{}": [str(day) for day in range(7)],  # 0 = Monday
    "digest.title.{}": ["daily", "weekly", "now"],
    "help.why.{}": list(HELP_WHY),
    "help.task.{}": [key for key, _ in HELP_TASKS],
    "reason.{}": list(REASON_KEYS),
    "reason.kind.{}": list(ADDRESS_KINDS),
    "audit.did.{}": ["other", "proposal.approved", "group.created", "role.changed"],
    "audit.{}": ["reason", "comment", "error"],
    "guide.talk.{}": ["thanks", "hello", "bye", "ok", "other"],  # bot.guide's small talk
}


def keys_used_by_code() -> dict[str, str]:
    """Every catalog key the code names, with where it is named."""
    found: dict[str, str] = {}
    for folder in ("bot", "adapters"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for m in [*_CALL.finditer(source), *_KEY_ASSIGNED.finditer(source)]:
                where = f"{path.relative_to(ROOT)}:{source.count(chr(10), 0, m.start()) + 1}"
                for is_f, key in ((m.group(1), m.group(3)), (m.group(4), m.group(6))):
                    if key is None or "." not in key or " " in key:
                        continue
                    if key.endswith("."):  # "param." + name: see the param test below
                        assert key == "param.", where
                        continue
                    if is_f and "{" in key:
                        shape = re.sub(r"\{[^}]*\}", "{}", key)
                        assert shape in EXPANSIONS, f"{where}: add {shape!r} to EXPANSIONS"
                        for value in EXPANSIONS[shape]:
                            found.setdefault(shape.replace("{}", value), where)
                    else:
                        found.setdefault(key, where)
    return found


def test_the_scan_finds_the_keys_it_should() -> None:
    used = keys_used_by_code()
    for key in (
        "error.unclosed_quote",  # UserError in grammar
        "error.unknown_command_suggestion",
        "access.start_without_code",  # key = "..." if ... else "..."
        "groups.member_mark",  # a conditional inside the call
        "item.via",  # the key on the next line
        "error.usage",  # t('...') inside an f-string
        "add.told",  # ctx.tell(person, "...")
        "console.welcome",  # the console's own hints
        "notify.mute",  # f"notify.{mode.value}"
        "role.tag.partner",
        "help.group create",
    ):
        assert key in used, key
    assert len(used) > 120


def test_every_key_the_code_uses_exists() -> None:
    en, de = catalog("en"), catalog("de")
    missing = {key: where for key, where in keys_used_by_code().items() if key not in en}
    assert missing == {}
    assert [key for key in keys_used_by_code() if key not in de] == []


def test_every_command_has_help() -> None:
    for s in grammar.SPECS:
        for language in LANGUAGES:
            assert f"help.{s.key}" in catalog(language), (language, s.key)


def test_every_parameter_has_a_name() -> None:
    names = {p.name for s in grammar.SPECS for p in s.params}
    names |= {f.value_name for s in grammar.SPECS for f in s.flags.values() if f.value_name}
    for language in LANGUAGES:
        assert sorted(n for n in names if f"param.{n}" not in catalog(language)) == [], language


# --- formatting -------------------------------------------------------------------------


def test_parameters_are_escaped() -> None:
    t = Translator("en")
    text = t("join.done", group="**x** [y](https://z.test) _w_")
    assert to_plain(text) == (
        "You joined **x** [y](https://z.test) _w_. You get its posts in your daily digest."
    )
    assert isinstance(text, Markup)


def test_parameters_at_a_line_start_stay_literal() -> None:
    t = Translator("en")
    text = t("item.text", text="- not a list\n> not a quote")
    assert to_plain(text) == "- not a list\n> not a quote"


def test_markup_parameters_are_kept() -> None:
    t = Translator("de")
    assert to_plain(t("join.done", group=bold("Marketing"))).startswith(
        "Du bist Marketing beigetreten."
    )
    assert "**Marketing**" in t("join.done", group=bold("Marketing"))


def test_catalog_markup_renders() -> None:
    t = Translator("en")
    text = t("error.slug_taken", slug="mkt")
    assert "**mkt**" in text
    assert to_plain(text) == "The group name mkt is already taken. Choose another one."


def test_missing_parameter_shows_instead_of_crashing() -> None:
    assert "{group}" in Translator("en")("join.done")


@pytest.mark.parametrize(
    ("language", "count", "expected"),
    [
        ("en", 0, "0 groups:"),
        ("en", 1, "1 group:"),
        ("en", 2, "2 groups:"),
        ("de", 0, "0 Gruppen:"),
        ("de", 1, "1 Gruppe:"),
        ("de", 21, "21 Gruppen:"),
    ],
)
def test_plural_selection(language: str, count: int, expected: str) -> None:
    assert Translator(language)("groups.header", count=count) == expected


def test_plural_inside_a_line() -> None:
    t = Translator("de")
    one = t("groups.line", slug="a", name="A", kind="offen", count=1)
    assert to_plain(one) == "• a — A (offen, 1 Mitglied)"
    assert to_plain(t("groups.line", slug="a", name="A", kind="offen", count=3)).endswith(
        "3 Mitglieder)"
    )


def test_zero_form_when_a_table_has_one() -> None:
    t = Translator("en")
    t._catalog = {"things": {"zero": "nothing", "one": "one thing", "other": "{count} things"}}
    assert [t("things", count=n) for n in (0, 1, 5)] == ["nothing", "one thing", "5 things"]


def test_unknown_keys_and_languages() -> None:
    assert Translator("fr").language == "en"
    t = Translator("de")
    assert not t.has("no.such.key")
    assert t("no.such.key") == "no.such.key"
    assert t.has("join.done")


# --- dates and languages ----------------------------------------------------------------


def test_dates_in_german_and_english() -> None:
    when = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert Translator("de").datetime(when, "Europe/Berlin") == "27.11.2026 08:00"
    assert Translator("en").datetime(when, "Europe/Berlin") == "2026-11-27 08:00"


def test_dates_follow_the_time_zone_and_summer_time() -> None:
    when = datetime(2026, 7, 1, 6, 5, tzinfo=UTC)
    assert Translator("de").datetime(when, "Europe/Berlin") == "01.07.2026 08:05"
    assert Translator("en").datetime(when, "America/New_York") == "2026-07-01 02:05"


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("de-AT", "de"),
        ("de_DE", "de"),
        ("DE", "de"),
        ("de", "de"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("fr-FR", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_language(code: str | None, language: str | None) -> None:
    assert normalize_language(code) == language


def test_a_topic_catalog_may_not_redefine_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.i18n as i18n

    (tmp_path / "en.toml").write_text('[greeting]\nhello = "Hello"\n')
    (tmp_path / "en.feeds.toml").write_text('[feed]\nadded = "Added"\n')
    monkeypatch.setattr(i18n, "_HERE", tmp_path)
    i18n.catalog.cache_clear()
    try:
        assert i18n.catalog("en") == {"greeting.hello": "Hello", "feed.added": "Added"}
        (tmp_path / "en.more.toml").write_text('[greeting]\nhello = "Hi"\n')
        i18n.catalog.cache_clear()
        with pytest.raises(RuntimeError, match=r"en\.more\.toml defines keys defined before"):
            i18n.catalog("en")
    finally:
        monkeypatch.undo()
        i18n.catalog.cache_clear()
