"""Every message the bot can send through Telegram passes Telegram's rules (issue 22,
point 13): each catalog text, filled with hostile and very long values, renders as HTML
that Telegram's parser takes (the fake's, which follows tdlib's), in pieces of at most
4,096 characters (1,024 for a caption); callback data fits in 64 bytes; a post card with
a hostile author, group, link and 10,000 characters of text is sent whole."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path

from adapters.telegram.render import MAX_CAPTION, MAX_TEXT, CallbackCodec, message_html
from app.wiring import make_core
from bot.clock import SystemClock
from bot.core import CoreSettings
from bot.delivery import item_message
from bot.i18n import LANGUAGES, Translator, catalog
from bot.message import Button, Message, Target
from store.db import Database
from store.models import Group, Item, ItemKind, Person
from tests.adapters.conftest import FRANZ, TelegramPinwall
from tests.fakes.telegram import FakeTelegram, parse_html, utf16_len

HOSTILE = "<b>&amp; _*[]`~|#+-=.!{}()\\ </i>\"'" + " Ünïcödé 👍🏽 "
LONG_NAME = "Ä" * 200 + HOSTILE * 3
BIG = ("Sehr langer Text <script>alert(1)</script> & **fett** _kursiv_ [x](javascript:y) " * 130)[
    :10_000
]


# Where a person's own words land in a text (a post, a comment, a reason, a query, a
# title): there 10,000 characters can come; names, codes and numbers are bounded by
# Pinwall itself and get the long name.
FREE_TEXT = frozenset(
    {"text", "reason", "comment", "title", "query", "words", "sentence", "detail", "details"}
)


def _placeholders(template: object) -> set[str]:
    forms = template.values() if isinstance(template, dict) else [template]
    found: set[str] = set()
    for form in forms:
        for _, name, _, _ in string.Formatter().parse(str(form)):
            if name:
                found.add(name)
    return found


def _values(names: set[str], filler: str) -> dict[str, object]:
    return {n: 12_345 if n == "count" else filler for n in names}


def _check(html_pieces: list[str], limit: int, where: str) -> None:
    for piece in html_pieces:
        text, _ = parse_html(piece)  # raises as Telegram refuses: "can't parse entities"
        assert utf16_len(text) <= limit, f"{where}: {utf16_len(text)} > {limit}"
        assert text.strip(), f"{where}: an empty piece"


def test_every_catalog_text_with_hostile_values_passes_telegrams_rules() -> None:
    checked = big = 0
    for language in LANGUAGES:
        t = Translator(language)
        for key, template in catalog(language).items():
            names = _placeholders(template)
            where = f"{language}:{key}"
            # as a title (bold) above the same text as it is in the catalog
            for filler in (HOSTILE, LONG_NAME):
                message = Message(title=str(t(key, **_values(names, filler))), text=t(key))
                _check(message_html(message), MAX_TEXT, where)
                _check(message_html(message, MAX_CAPTION), MAX_CAPTION, where + " (caption)")
                checked += 1
            if names & FREE_TEXT:  # 10,000 characters in it: split within the text limit
                values = {n: BIG if n in FREE_TEXT else LONG_NAME for n in names}
                values.update({n: 12_345 for n in names if n == "count"})
                message = Message(text=t(key, **values))
                _check(message_html(message), MAX_TEXT, where + " (10k)")
                checked += 1
                big += 1
    assert checked > 3000  # every text of both catalogs, two or three times
    assert big > 50


def test_callback_data_of_every_button_fits_in_64_bytes(sqlite_db: Database) -> None:
    codec = CallbackCodec(b"k" * 32)
    core = make_core(sqlite_db, SystemClock(), CoreSettings())
    for action in core.handlers.actions:
        for value in ("1", "9999999999:12", "abcdef:99", "9999999999:9999999999"):
            data = codec.encode(-1001234567890, Button(label="x", action=action, value=value))
            assert data is not None, (action, value)
            assert len(data.encode()) <= 64
    # a value that cannot fit is refused (the button is left out and logged), never cut
    assert codec.encode(1, Button(label="x", action="item.like", value="9" * 60)) is None


async def test_a_hostile_post_is_sent_whole_within_the_limits(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    author = Person(handle="a_b*c", display_name=LONG_NAME, role="member")
    group = Group(slug="g", name=LONG_NAME, visibility="open")
    item = Item(
        id=7,
        group_id=1,
        kind=ItemKind.LINK,
        text=BIG,
        url='https://example.com/?a=<b>&c="d"\'',
        title=HOSTILE,
        description=HOSTILE * 20,
        site_name=HOSTILE,
        created_at=now,
    )
    for language in LANGUAGES:
        card = item_message(Translator(language), item, group, author, target_platform="telegram")
        _check(message_html(card), MAX_TEXT, f"post card ({language})")

    tg = TelegramPinwall(sqlite_db, fake, tmp_path)
    await tg.start()
    try:
        fake.user_starts(FRANZ)
        await tg.bot_said(FRANZ.id, "Einladung")
        before = len(fake.sent_to(FRANZ.id))
        card = item_message(Translator("de"), item, group, author, target_platform="telegram")
        sent = await tg.adapter.send(Target("telegram", "dm", str(FRANZ.id)), card)
        assert sent.__class__.__name__ == "Delivered"
        parts = fake.sent_to(FRANZ.id)[before:]
        assert len(parts) >= 3  # 10,000 characters and more: split, not refused
        assert all(utf16_len(p.text or "") <= MAX_TEXT for p in parts)
        assert [b["text"] for row in parts[-1].reply_markup["inline_keyboard"] for b in row] == [
            "Kommentieren",
            "👍",
        ]
        # nothing lost at the cuts (a cut may fall between two words)
        shown = "".join((p.text or "").replace(" ", "").replace("\n", "") for p in parts)
        assert shown.count("SehrlangerText") == BIG.count("Sehr langer Text")
    finally:
        await tg.close()
