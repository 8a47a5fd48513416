"""Issue 21, points 2, 6 and 8 as conversations: both languages in (German keywords,
command names, times and dates), names people expect (handles, slugs, unique titles,
codes), reactions kept as themselves and counted per emoji."""

from __future__ import annotations

import string
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot import grammar, when, words
from bot.grammar import parse
from store.codes import CODE_ALPHABET, code_candidates, new_code, normalize_code
from store.models import Group, Invite, Membership, Person, Reaction
from store.names import handle_base, slugify
from tests.bot.conversation import de, en, refused
from tests.harness import World

# --- the German keyword table, exhaustively ---------------------------------------------

_CHOICE_PARAMS = {
    "notify": ("mode", "vertrieb {}"),
    "invite": ("role", "{} vertrieb"),
    "role": ("role", "@bob {}"),
    "settings language": ("language", "{}"),
}


@pytest.mark.parametrize(
    ("command", "typed", "meant"),
    [
        ("notify", "sofort", "instant"),
        ("notify", "täglich", "daily"),
        ("notify", "Täglich", "daily"),
        ("notify", "taeglich", "daily"),
        ("notify", "wöchentlich", "weekly"),
        ("notify", "woechentlich", "weekly"),
        ("notify", "stumm", "mute"),
        ("notify", "aus", "mute"),
        ("notify", "daily", "daily"),
        ("invite", "Mitglied", "member"),
        ("invite", "Gast", "guest"),
        ("invite", "Partner", "partner"),
        ("invite", "Partnerin", "partner"),
        ("role", "Freigeber", "gatekeeper"),
        ("role", "Freigeber:in", "gatekeeper"),
        ("role", "Admin", "admin"),
        ("role", "mitglied", "member"),
        ("settings language", "deutsch", "de"),
        ("settings language", "Englisch", "en"),
        ("settings language", "english", "en"),
    ],
)
def test_every_choice_has_its_german_form(command: str, typed: str, meant: str) -> None:
    param, shape = _CHOICE_PARAMS[command]
    name, _, sub = command.partition(" ")
    arguments = f"{sub} {shape.format(typed)}".strip()
    assert parse(name, arguments).arg(param) == meant


def test_each_german_form_names_a_choice_the_grammar_has() -> None:
    choices = {c for s in grammar.SPECS for p in s.params for c in p.choices}
    assert set(words.CHOICES) <= choices
    for meant, forms in words.CHOICES.items():
        for form in forms:
            allowed = next(p.choices for s in grammar.SPECS for p in s.params if meant in p.choices)
            assert words.choice(form, allowed) == meant, form


@pytest.mark.parametrize(
    ("name", "arguments", "key"),
    [
        ("hilfe", "", "help"),
        ("gruppen", "", "groups"),
        ("gruppe", "erstellen vertrieb", "group create"),
        ("gruppe", "anlegen vertrieb", "group create"),
        ("beitreten", "vertrieb", "join"),
        ("verlassen", "vertrieb", "leave"),
        ("austreten", "vertrieb", "leave"),
        ("mitglieder", "vertrieb", "members"),
        ("hinzufügen", "@bob vertrieb", "add"),
        ("hinzufuegen", "@bob vertrieb", "add"),
        ("entfernen", "@bob vertrieb", "remove"),
        ("teilen", "vertrieb Hallo", "share"),
        ("Teilen", "vertrieb Hallo", "share"),
        ("beiträge", "vertrieb", "items"),
        ("kommentieren", "I1 gut", "comment"),
        ("benachrichtigung", "vertrieb täglich", "notify"),
        ("feed", "hinzufügen vertrieb https://example.org/feed", "feed add"),
        ("feed", "liste", "feed list"),
        ("feed", "entfernen F1", "feed remove"),
        ("zusammenfassung", "jetzt", "digest now"),
        ("digest", "täglich 8", "digest daily"),
        ("digest", "wöchentlich Mo 8", "digest weekly"),
        ("digest", "aus", "digest off"),
        ("kanäle", "", "outlets"),
        ("vorschlagen", "mastodon Hallo", "propose"),
        ("offen", "", "pending"),
        ("freigeben", "P1", "approve"),
        ("ablehnen", "P1 zu lang", "reject"),
        ("überarbeiten", "P1 kürzer", "revise"),
        ("zurückziehen", "P1", "withdraw"),
        ("suchen", "Messe", "search"),
        ("einladen", "Gast vertrieb", "invite"),
        ("einladungen", "", "invites"),
        ("widerrufen", "ABCDEFGHJK", "revoke"),
        ("einlösen", "ABCDEFGHJK", "redeem"),
        ("verknüpfen", "", "link"),
        ("einstellungen", "sprache de", "settings language"),
        ("einstellungen", "zeitzone Europe/Berlin", "settings timezone"),
        ("rolle", "@bob Freigeber", "role"),
        ("verbinden", "vertrieb", "bridge"),
        ("protokoll", "", "audit"),
    ],
)
def test_german_command_names(name: str, arguments: str, key: str) -> None:
    assert parse(name, arguments).key == key
    assert name.lower() in grammar.COMMAND_NAMES


def test_german_names_collide_with_no_command_and_name_only_commands_that_exist() -> None:
    english = {s.name for s in grammar.SPECS}
    assert not set(grammar.ALIASES) & english
    assert set(grammar.ALIASES.values()) <= english
    # `abbrechen` and `zeigen` wait for `cancel` and `show` (issue 21, points 3 and 5)
    assert ("abbrechen" in grammar.ALIASES) == ("cancel" in english)


@pytest.mark.parametrize(
    ("typed", "minute"),
    [
        ("8", 480),
        ("08", 480),
        ("8:00", 480),
        ("08:00", 480),
        ("08.00", 480),
        ("8 Uhr", 480),
        ("8 uhr", 480),
        ("8h", 480),
        ("8:30 Uhr", 510),
        ("8am", 480),
        ("8:30 pm", 20 * 60 + 30),
        ("12 am", 0),
        ("0:00", 0),
        ("23:59", 23 * 60 + 59),
    ],
)
def test_clock_times(typed: str, minute: int) -> None:
    assert when.clock_minutes(typed) == minute


@pytest.mark.parametrize("typed", ["24", "8:5", "08:60", "13pm", "-1:00", "acht", "8 Uhr 30", ""])
def test_not_clock_times(typed: str) -> None:
    assert when.clock_minutes(typed) is None


# Friday, 27 November 2026, 10:00 in Berlin.
_NOW = datetime(2026, 11, 27, 9, 0, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("9:00", "2026-11-28 09:00"),  # past today: tomorrow
        ("17 Uhr", "2026-11-27 17:00"),
        ("morgen 9:00", "2026-11-28 09:00"),
        ("morgen um 9", "2026-11-28 09:00"),
        ("tomorrow at 9am", "2026-11-28 09:00"),
        ("9:00 morgen", "2026-11-28 09:00"),
        ("übermorgen 8 Uhr", "2026-11-29 08:00"),
        ("heute 17:30", "2026-11-27 17:30"),
        ("today 5:30 pm", "2026-11-27 17:30"),
        ("Mo 14:00", "2026-11-30 14:00"),
        ("Montag 14 Uhr", "2026-11-30 14:00"),
        ("nächsten Montag um 9", "2026-11-30 09:00"),
        ("mon 2pm", "2026-11-30 14:00"),
        ("Fr 8:00", "2026-12-04 08:00"),  # Friday 8:00 is past: next week's
        ("Fr 12:00", "2026-11-27 12:00"),
        ("So", "2026-11-29 00:00"),
        ("24.12. 10:00", "2026-12-24 10:00"),
        ("1.1. 9:00", "2027-01-01 09:00"),
        ("01.12.2026 09:00", "2026-12-01 09:00"),
        ("24.12.26 10:00", "2026-12-24 10:00"),
        ("2026-12-24 10:00", "2026-12-24 10:00"),
        ("2026-12-24T10:00", "2026-12-24 10:00"),
        ("2026-12-24", "2026-12-24 00:00"),
        ("in 2h", "2026-11-27 12:00"),
        ("in 2 Stunden", "2026-11-27 12:00"),
        ("in 30 min", "2026-11-27 10:30"),
        ("in einer Stunde", "2026-11-27 11:00"),
        ("in 3 Tagen", "2026-11-30 10:00"),
        ("in 1 week", "2026-12-04 10:00"),
    ],
)
def test_moments(typed: str, meant: str) -> None:
    found = when.moment(typed, "Europe/Berlin", _NOW)
    assert isinstance(found, datetime), typed
    assert found.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M") == meant


@pytest.mark.parametrize(
    "typed", ["banana", "31.02.", "25:00", "morgen heute", "in", "in 2", "9:00 10:00", "Mo Di"]
)
def test_not_moments(typed: str) -> None:
    assert when.moment(typed, "Europe/Berlin", _NOW) is None


@pytest.mark.parametrize("typed", ["jetzt", "now", "Jetzt"])
def test_now_is_right_now(typed: str) -> None:
    assert when.moment(typed, "Europe/Berlin", _NOW) is when.RIGHT_NOW


def test_at_takes_as_many_words_as_name_a_moment() -> None:
    cmd = parse("propose", "mastodon Neue Filiale --at morgen 9 Uhr")
    assert (cmd.arg("text"), cmd.flags["at"]) == ("Neue Filiale", "morgen 9 Uhr")
    cmd = parse("propose", "mastodon --at in 2h Neue Filiale in Bonn")
    assert (cmd.arg("text"), cmd.flags["at"]) == ("Neue Filiale in Bonn", "in 2h")
    cmd = parse("propose", 'mastodon Hallo --at "24.12. 10:00" --item I3')
    assert (cmd.arg("text"), cmd.flags) == ("Hallo", {"at": "24.12. 10:00", "item": "I3"})
    cmd = parse("propose", "mastodon Hallo --at sometime")  # the handler says what it wants
    assert (cmd.arg("text"), cmd.flags["at"]) == ("Hallo", "sometime")


async def test_german_words_whatever_the_language(world: World) -> None:
    await world.say("admin", "/group create vertrieb Vertrieb")
    await world.say("alice", "/beitreten vertrieb")
    out = await world.say("alice", "/notify vertrieb täglich")
    assert out.text("alice") == en("notify.daily", group="Vertrieb")
    out = await world.say("alice", "/benachrichtigung vertrieb stumm")
    assert out.text("alice") == en("notify.mute", group="Vertrieb")
    await world.say("alice", "/settings language deutsch")
    out = await world.say("alice", "/notify vertrieb sofort")
    assert out.text("alice") == de("notify.instant", group="Vertrieb")
    out = await world.say("alice", "/zusammenfassung täglich 8 Uhr")
    assert out.text("alice").startswith(de("digest.daily_set", time="08:00", next="").split(":")[0])
    row = world.db.engine.connect().execute(
        select(Membership.notify).join(Person).where(Person.handle == "alice")
    )
    assert row.scalar() == "instant"


async def test_an_umlaut_less_german_word_still_refuses_nonsense(world: World) -> None:
    await world.say("admin", "/group create vertrieb Vertrieb")
    await world.say("alice", "/settings language de")
    await world.say("alice", "/join vertrieb")
    text = await refused(world, "alice", "/notify vertrieb manchmal")
    assert text.startswith(
        de("error.bad_choice", value="manchmal", choices="instant, daily, weekly, mute, mail")
    )


# --- names people expect ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "handle"),
    [
        ("Björn Müller", "bjoern.mueller"),
        ("Jürgen Weiß", "juergen.weiss"),
        ("ÄÖÜ äöü ß", "aeoeue.aeoeue.ss"),
        ("Renée O'Brien", "renee.obrien"),
        ("Łukasz Żółć", "lukasz.zolc"),
        ("Søren Kierkegaard", "soren.kierkegaard"),
        ("Ångström", "aangstroem"),
        ("François Núñez", "francois.nunez"),
        ("u\u0308ber", "ueber"),  # a combining diaeresis, as some keyboards send it
        ("Дмитрий", "user"),
    ],
)
def test_handles_transliterate(name: str, handle: str) -> None:
    assert handle_base(name) == handle


@given(st.text())
def test_every_handle_is_ascii_and_stable(name: str) -> None:
    handle = handle_base(name)
    assert handle.isascii()
    assert 1 <= len(handle) <= 32
    assert set(handle) <= set(string.ascii_lowercase + string.digits + "._-")
    assert handle_base(handle) == handle


@given(st.text())
def test_every_slug_is_a_slug_or_empty(title: str) -> None:
    slug = slugify(title)
    assert slug == "" or (slug.isascii() and slugify(slug) == slug and len(slug) <= 32)


async def test_group_create_with_a_title_offers_its_slug(world: World) -> None:
    out = await world.say("alice", "/group create Sales Team")
    assert out.text("alice") == en(
        "group.created", slug="sales-team", name="Sales Team", kind="open"
    )
    await world.say("alice", "/settings language de")
    out = await world.say("alice", '/gruppe erstellen "Einkauf & Logistik Süd" --closed')
    assert out.text("alice") == de(
        "group.created",
        slug="einkauf-logistik-sued",
        name="Einkauf & Logistik Süd",
        kind="geschlossen",
    )
    # The slug a title suggests is taken by another title: the next free one
    await world.say("alice", "/group create sales-teams Sales-Team")
    out = await world.say("bob", "/group create Sales TEAMS")
    assert "sales-teams-2" in out.text("bob")


async def test_titles_are_unique_whatever_their_case(world: World) -> None:
    await world.say("alice", "/group create Sales Team")
    text = await refused(world, "bob", "/group create SALES team")
    assert text == en("error.title_taken", name="Sales Team", slug="sales-team")
    text = await refused(world, "bob", '/group create vertrieb "sales team"')
    assert text == en("error.title_taken", name="Sales Team", slug="sales-team")
    await world.say("bob", "/settings language de")
    text = await refused(world, "bob", "/gruppe erstellen Sales  Team")
    assert text == de("error.title_taken", name="Sales Team", slug="sales-team")
    with world.db.engine.connect() as conn:
        assert conn.execute(select(Group.title_key)).scalars().all() == ["sales team"]


async def test_groups_are_found_by_title_too(world: World) -> None:
    await world.say("alice", "/group create Sales Team")
    out = await world.say("bob", '/join "sales team"')
    assert out.text("bob") == en("join.done", group="Sales Team")


# --- codes --------------------------------------------------------------------------------


def test_codes_use_an_unambiguous_upper_case_alphabet() -> None:
    assert not set(CODE_ALPHABET) & set("0O1IL")
    assert set(CODE_ALPHABET) <= set(string.ascii_uppercase + string.digits)
    for _ in range(200):
        code = new_code()
        assert len(code) == 10
        assert set(code) <= set(CODE_ALPHABET)


@given(st.text(alphabet=CODE_ALPHABET, min_size=10, max_size=10), st.sampled_from(["", "-", " "]))
def test_codes_round_trip_through_lower_case_and_dashes(code: str, sep: str) -> None:
    typed = sep.join(code[i : i + 4] for i in range(0, len(code), 4)).lower()
    assert normalize_code(typed) == code
    assert code_candidates(typed)[0] == code


def test_an_old_mixed_case_code_is_still_found_as_typed() -> None:
    assert code_candidates("aB3xQ9kLm0") == ["AB3XQ9KLM0", "aB3xQ9kLm0"]
    assert code_candidates("ABCDEFGHJK") == ["ABCDEFGHJK"]


async def test_an_invite_is_redeemed_in_lower_case_with_dashes_and_spaces(world: World) -> None:
    await world.say("admin", "/group create vertrieb Vertrieb")
    await world.say("admin", "/invite member vertrieb --uses 3")
    with world.db.engine.connect() as conn:
        code = conn.execute(select(Invite.code)).scalar_one()
    assert code == code.upper()
    assert not set(code) & set("0O1IL")
    typed = f"{code[:5].lower()}-{code[5:].lower()}"
    out = await world.say("gina", f"/redeem {typed}", language="de")
    assert "Vertrieb" in out.text("gina")
    out = await world.say("gus", f"/einlösen {code[:3]} {code[3:7]} {code[7:]}")
    assert "Vertrieb" in out.text("gus")


# --- reactions ------------------------------------------------------------------------------


async def test_reactions_are_kept_as_themselves_and_counted_per_emoji(world: World) -> None:
    await world.say("alice", "/group create vertrieb Vertrieb")
    for who in ("bob", "carol"):
        await world.say(who, "/join vertrieb")
        await world.say(who, "/notify vertrieb sofort")
    out = await world.say("alice", "/share vertrieb Neue Preisliste ist da")
    copies = {who: out.to(who)[0] for who in ("bob", "carol")}
    for who, emoji in (("bob", "🎉"), ("carol", "🎉"), ("carol", "👍"), ("bob", "🚀")):
        await world.react(who, copies[who], emoji)
    with world.db.engine.connect() as conn:
        kept = sorted(conn.execute(select(Reaction.emoji)).scalars())
    assert kept == sorted(["🎉", "🎉", "👍", "🚀"])
    items = (await world.say("alice", "/items vertrieb")).text("alice")
    assert "🎉 2 · 👍 1 · 🚀 1" in items
    await world.say("alice", "/settings language de")
    items = (await world.say("alice", "/beiträge vertrieb")).text("alice")
    assert "🎉 2 · 👍 1 · 🚀 1" in items
