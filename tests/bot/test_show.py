"""Opening one post (show / zeigen), items lines cut with "…", a digest's Open buttons,
and reasons in the reader's language — as conversations, in English and German."""

from __future__ import annotations

from bot.i18n import Translator
from bot.markup import to_plain
from bot.reasons import reason
from tests.bot.conversation import de, en, other_messenger, refused, say_on
from tests.harness import World


async def _post_with_comments(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    for name in ("alice", "bob", "carol"):
        await world.say(name, "/join marketing")
    await world.say("bob", "/share marketing https://example.com/poster New poster at the station")
    await world.say("alice", "/comment #1 Great poster!")
    await world.say("carol", "/comment #1 Where exactly?")


async def test_show_opens_one_post_whole_with_comments_and_actions(world: World) -> None:
    await _post_with_comments(world)
    out = await world.say("alice", "/show #1")
    assert out.addresses == ["alice"]
    assert out.text("alice").splitlines() == [
        en("show.title", item="#1", author="@bob", group="Marketing", when="2026-11-27 09:00"),
        "New poster at the station",
        "https://example.com/poster",
        "",
        en("show.comments", count=2),
        "• "
        + en("show.comment", author="@alice", when="2026-11-27 09:00", text="Great poster!")[2:],
        "• "
        + en("show.comment", author="@carol", when="2026-11-27 09:00", text="Where exactly?")[2:],
        "Comment  👍  " + en("show.propose"),
    ]
    (sent,) = out.to("alice")
    assert [b.action for b in sent.message.buttons] == ["item.comment", "item.like", "item.propose"]


async def test_the_buttons_of_an_opened_post_comment_react_and_propose(world: World) -> None:
    await _post_with_comments(world)
    (opened,) = (await world.say("alice", "/show 1")).to("alice")
    liked = await world.press("alice", opened, 1)
    assert liked.text("alice") == en("like.done", item="#1")
    asked = await world.press("alice", opened, 0)
    assert asked.text("alice") == en("comment.prompt", item="#1")
    await world.say("alice", "And the colours!")
    how = await world.press("alice", opened, 2)
    assert how.text("alice") == en(
        "show.propose_how", item="#1", outlet="newsroom", outlets="newsroom"
    )
    again = (await world.say("alice", "/show #1")).text("alice")
    assert en("show.reactions", reactions="👍 1") in again
    assert en("show.comments", count=3) in again


async def test_zeigen_opens_a_post_in_german(world: World) -> None:
    await _post_with_comments(world)
    await world.say("alice", "/settings language de")
    out = await world.say("alice", "/zeigen #1")
    text = out.text("alice")
    assert text.splitlines()[0] == de(
        "show.title", item="#1", author="@bob", group="Marketing", when="27.11.2026 09:00"
    )
    assert de("show.comments", count=2) in text
    assert text.splitlines()[-1] == "Kommentieren  👍  " + de("show.propose")


async def test_a_post_without_comments_says_so_and_a_hidden_one_is_not_found(world: World) -> None:
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("alice", "/share marketing Coffee machine fixed")
    await world.say("admin", "/share board Secret plans")
    text = (await world.say("alice", "/show #1")).text("alice")
    assert en("show.no_comments") in text
    assert await refused(world, "alice", "/show #2") == en("error.item_not_found", item="#2")


async def test_a_partner_gets_no_propose_button(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create shop Shop --externals")
    await world.say("admin", "/share shop Opening hours")
    out = await world.say("admin", "/invite partner shop")
    code = out.to("admin")[0].message.meta["invite_code"]
    await say_on(world, telegram, "paul", f"/redeem {code}")
    before = len(telegram.sent)
    await say_on(world, telegram, "paul", "/show #1")
    (sent,) = telegram.sent[before:]
    assert [b.action for b in sent.message.buttons] == ["item.comment", "item.like"]


async def test_items_lines_carry_the_id_and_cut_long_text_with_an_ellipsis(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    long = "word " * 40
    await world.say("alice", f"/share marketing {long}")
    listing = (await world.say("alice", "/items marketing")).text("alice").splitlines()
    line = listing[1]
    assert line.startswith("#1 · @alice · ")
    shown = line.split(": ", 1)[1]
    assert shown.endswith("…")
    assert len(shown) == 100
    assert " ".join(long.split()).startswith(shown[:-1])


async def test_a_digest_offers_to_open_each_post(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    await world.say("bob", "/share marketing First")
    await world.say("bob", "/share marketing Second")
    out = await world.say("alice", "/digest now")
    (digest,) = [s for s in out.to("alice") if s.message.buttons]
    assert [(b.label, b.action, b.value) for b in digest.message.buttons] == [
        (en("digest.open", item="#2"), "item.open", "2"),
        (en("digest.open", item="#1"), "item.open", "1"),
    ]
    opened = await world.press("alice", digest, 0)
    assert opened.text("alice").splitlines()[0] == en(
        "show.title", item="#2", author="@bob", group="Marketing", when="2026-11-27 09:00"
    )
    assert "item.comment" in [b.action for s in opened.to("alice") for b in s.message.buttons]


def test_fetch_and_outlet_reasons_read_in_german_without_english() -> None:
    t = Translator("de")
    cases = {
        "127.0.0.1 is a loopback address": "127.0.0.1 ist eine Adresse dieses Rechners selbst",
        "intranet.example resolves to 10.0.0.5, a private address": (
            "intranet.example führt zu 10.0.0.5, eine Adresse in einem privaten Netz"
        ),
        "read timed out after 10 s": "keine Antwort innerhalb von 10 Sekunden",
        "Mastodon: server error 502": "Mastodon hat einen Serverfehler (502)",
        "Mastodon refused the post (422: Validation failed)": "Mastodon hat den Beitrag abgelehnt",
        "the webhook refused it (403)": "der Webhook hat den Beitrag abgelehnt (403)",
        "ZeroDivisionError: division by zero": de("reason.other"),
    }
    for raw, german in cases.items():
        assert to_plain(reason(t, raw)) == german, raw
    english = Translator("en")
    assert to_plain(reason(english, "127.0.0.1 is a loopback address")) == (
        "127.0.0.1 is an address of this computer itself"
    )
    assert to_plain(reason(english, "something odd")) == "something odd"
