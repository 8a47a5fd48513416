"""Guided commands, as conversations in both languages: a bare command asks for what is
missing with the valid choices as buttons, one step at a time, to the end; any question
ends with cancel/abbrechen or after ten minutes, and nothing is half-written. Plain
direct messages: thanks and greetings get one friendly line, never a share prompt."""

from __future__ import annotations

from adapters.memory import Sent
from tests.bot.conversation import asked, de, en
from tests.harness import Said, World


async def _groups(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create sales Sales --closed")
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/group create events Events")


def _question(out: Said, who: str) -> Sent:
    [question] = out.to(who)
    assert question.message.buttons
    return question


def _state(world: World) -> dict[str, list[tuple[object, ...]]]:
    """The state tables, but when each account was last seen (time passes here)."""
    snapshot: dict[str, list[tuple[object, ...]]] = dict(world.snapshot())
    snapshot["accounts"] = [row[:7] for row in snapshot["accounts"]]
    return snapshot


async def _german(world: World, who: str) -> None:
    await world.say(who, "/settings language de")


# --- join, share, notify, items: to the end ----------------------------------------------


async def test_a_bare_join_offers_the_groups_one_may_join_and_joins_the_pressed_one(
    world: World,
) -> None:
    await _groups(world)
    await world.say("alice", "/join events")
    out = await world.say("alice", "/join")
    # open and closed groups alice is not in; not the secret one, not events
    assert out.text("alice") == asked("en", "guide.ask.join.group", "Marketing", "Sales")
    out = await world.press("alice", _question(out, "alice"), 0)
    assert out.text("alice") == en("join.done", group="Marketing")


async def test_a_bare_join_in_german_takes_a_typed_number_or_name(world: World) -> None:
    await _groups(world)
    await _german(world, "alice")
    out = await world.say("alice", "/join")
    assert out.text("alice") == asked("de", "guide.ask.join.group", "Events", "Marketing", "Sales")
    out = await world.say("alice", "2")  # the console's numbered choice
    assert out.text("alice") == de("join.done", group="Marketing")
    out = await world.say("alice", "/join")
    assert out.text("alice") == asked("de", "guide.ask.join.group", "Events", "Sales")
    out = await world.say("alice", "events")
    assert out.text("alice") == de("join.done", group="Events")


async def test_a_bare_share_asks_for_the_group_then_the_content(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    await world.say("alice", "/join events")
    await world.say("bob", "/join events")
    await world.say("bob", "/notify events instant")
    out = await world.say("alice", "/share")
    assert out.text("alice") == asked("en", "guide.ask.share.group", "Events", "Marketing")
    out = await world.press("alice", _question(out, "alice"), 0)
    assert out.text("alice") == asked("en", "guide.ask.share.content")
    assert out.addresses == ["alice"]  # nothing is shared before the content is there
    out = await world.say("alice", "Summer party https://example.com/party")
    assert out.text("alice") == en("share.done", item="#1", group="Events")
    assert out.text("bob") == (
        "alice in Events\nSummer party\nhttps://example.com/party\nComment  👍"
    )


async def test_a_bare_notify_in_german_offers_groups_then_the_modes_in_german(
    world: World,
) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    await _german(world, "alice")
    out = await world.say("alice", "/notify")
    assert out.text("alice") == asked("de", "guide.ask.notify.group", "Marketing")
    out = await world.press("alice", _question(out, "alice"), 0)
    assert out.text("alice") == asked(
        "de", "guide.ask.notify.mode", "sofort", "täglich", "wöchentlich", "stumm"
    )
    out = await world.say("alice", "täglich")  # the label typed, not the button
    assert out.text("alice") == de("notify.daily", group="Marketing")


async def test_a_word_that_is_no_choice_is_asked_again(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    out = await world.say("alice", "/notify marketing")
    assert out.text("alice") == asked(
        "en", "guide.ask.notify.mode", "instantly", "daily", "weekly", "mute"
    )
    out = await world.say("alice", "sometimes")
    assert out.text("alice") == asked(
        "en", "guide.ask.notify.mode", "instantly", "daily", "weekly", "mute", again=True
    )
    out = await world.press("alice", _question(out, "alice"), 0)
    assert out.text("alice") == en("notify.instant", group="Marketing")


async def test_a_bare_items_offers_the_readable_groups(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    await world.say("alice", "/share marketing Poster proofs are in")
    out = await world.say("alice", "/items")
    assert out.text("alice") == asked("en", "guide.ask.items.group", "Events", "Marketing")
    out = await world.press("alice", _question(out, "alice"), 1)
    assert out.text("alice").startswith(en("items.header", group="Marketing", count=1))


async def test_a_bare_digest_offers_what_it_can_do(world: World) -> None:
    await world.say("alice", "/whoami")
    out = await world.say("alice", "/digest")
    assert out.text("alice") == asked(
        "en", "guide.ask.sub_digest", "send it now", "daily", "weekly", "off"
    )
    out = await world.press("alice", _question(out, "alice"), 2)
    assert out.text("alice") == asked(
        "en",
        "guide.ask.digest_weekly.day",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    )
    out = await world.press("alice", _question(out, "alice"), 0)
    assert out.text("alice") == asked("en", "guide.ask.digest_weekly.time")


async def test_nothing_to_offer_says_so_instead_of_asking(world: World) -> None:
    await world.say("alice", "/whoami")
    before = world.snapshot()
    out = await world.say("alice", "/share")
    assert out.text("alice") == en("guide.none.mine")
    assert world.snapshot() == before


async def test_a_question_asked_in_a_room_goes_to_the_private_chat(world: World) -> None:
    await _groups(world)
    out = await world.say("alice", "/join", room="lobby")
    assert out.addresses == ["alice", "lobby"]
    assert out.text("alice") == asked("en", "guide.ask.join.group", "Events", "Marketing", "Sales")
    assert out.text("lobby") == en("private.sent", name="alice")
    out = await world.say("alice", "marketing")
    assert out.text("alice") == en("join.done", group="Marketing")


# --- cancel: nothing half-written --------------------------------------------------------


async def test_a_guided_share_cancelled_midway_writes_nothing(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    before = world.snapshot()
    out = await world.say("alice", "/share")
    question = _question(out, "alice")
    out = await world.press("alice", question, 0)
    assert out.text("alice") == asked("en", "guide.ask.share.content")
    out = await world.say("alice", "cancel")
    assert out.text("alice") == en("guide.cancelled")
    assert world.snapshot() == before
    # the old buttons are stale, and the next message is not taken as an answer
    assert (await world.press("alice", question, 0)).text("alice") == en("error.button_expired")
    assert world.snapshot() == before


async def test_abbrechen_ends_a_question_in_german_also_as_a_command(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/join events")
    await _german(world, "alice")
    before = world.snapshot()
    await world.say("alice", "/join")
    out = await world.say("alice", "Abbrechen!")
    assert out.text("alice") == de("guide.cancelled")
    assert world.snapshot() == before
    await world.say("alice", "/notify")
    out = await world.say("alice", "/abbrechen")
    assert out.text("alice") == de("guide.cancelled")
    out = await world.say("alice", "/cancel")
    assert out.text("alice") == de("guide.nothing_to_cancel")
    assert world.snapshot() == before


async def test_cancel_ends_a_comment_prompt_and_a_share_waiting_for_its_group(
    world: World,
) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    await world.say("alice", "/notify marketing instant")
    [copy] = (await world.say("bob", "/share marketing A poster https://example.com/p")).to("alice")
    before = world.snapshot()
    assert (await world.press("alice", copy, 0)).text("alice") == en("comment.prompt", item="#1")
    out = await world.say("alice", "abbrechen")  # not saved as the comment
    assert out.text("alice") == en("guide.cancelled")
    assert world.snapshot() == before

    question = _question(await world.say("alice", "https://example.com/mine"), "alice")
    out = await world.say("alice", "/cancel")
    assert out.text("alice") == en("guide.cancelled")
    assert world.snapshot() == before
    assert (await world.press("alice", question, 0)).text("alice") == en("error.button_expired")
    assert world.snapshot() == before


# --- ten minutes --------------------------------------------------------------------------


async def test_a_question_expires_after_ten_minutes_and_says_so(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/whoami")
    before = _state(world)
    question = _question(await world.say("alice", "/join"), "alice")
    world.clock.advance(minutes=11)
    out = await world.press("alice", question, 0)
    assert out.text("alice") == en("guide.expired_command", command="/join")
    assert _state(world) == before

    await world.say("alice", "/join")
    world.clock.advance(minutes=9)  # still open at nine minutes
    out = await world.say("alice", "events")
    assert out.text("alice") == en("join.done", group="Events")
    after_join = _state(world)
    await world.say("alice", "/join")
    world.clock.advance(minutes=10, seconds=1)
    out = await world.say("alice", "marketing")  # typed: not taken, not shared either
    assert out.text("alice") == en("guide.expired_command", command="/join")
    assert _state(world) == after_join


async def test_a_comment_prompt_and_a_share_draft_expire(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    await world.say("alice", "/notify marketing instant")
    [copy] = (await world.say("bob", "/share marketing A poster https://example.com/p")).to("alice")
    before = _state(world)
    await world.press("alice", copy, 0)
    world.clock.advance(minutes=11)
    out = await world.say("alice", "Where is this poster hanging, by the way?")
    assert out.text("alice") == en("guide.expired")
    assert _state(world) == before

    question = _question(await world.say("alice", "https://example.com/mine"), "alice")
    world.clock.advance(minutes=11)
    out = await world.press("alice", question, 0)
    assert out.text("alice") == en("guide.expired")
    assert _state(world) == before


# --- plain messages in a private chat ------------------------------------------------------


async def test_thanks_and_greetings_get_a_friendly_line_never_a_share_prompt(
    world: World,
) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    hint = en("guide.talk.hint")
    for line, kind in (
        ("Thanks!", "thanks"),
        ("thank you so much", "thanks"),
        ("Hi", "hello"),
        ("good morning :)", "hello"),
        ("bye", "bye"),
        ("ok", "ok"),
        ("👍", "thanks"),
        ("what is this?", "other"),
        ("Thanks a lot for your help today!", "thanks"),
    ):
        before = world.snapshot()
        out = await world.say("alice", line)
        [answer] = out.to("alice")
        assert not answer.message.buttons, line
        assert out.text("alice") == f"{en(f'guide.talk.{kind}', name='alice')}\n{hint}", line
        assert world.snapshot() == before, line


async def test_danke_and_hallo_in_german(world: World) -> None:
    await _german(world, "alice")
    hint = de("guide.talk.hint_no_groups")
    for line, kind in (
        ("Danke!", "thanks"),
        ("Vielen Dank 🙏", "thanks"),
        ("Hallo zusammen", "hello"),
        ("Moin", "hello"),
        ("Tschüss", "bye"),
        ("alles klar", "ok"),
        ("was geht?", "other"),
    ):
        out = await world.say("alice", line)
        assert out.text("alice") == f"{de(f'guide.talk.{kind}', name='alice')}\n{hint}", line


async def test_a_link_a_file_or_a_longer_note_still_offers_to_share(world: World) -> None:
    await _groups(world)
    await world.say("alice", "/join marketing")
    for line in (
        "https://example.com/x",
        "thanks https://example.com/x",
        "The new price list is out",
        "Lunch is on me today",
        "First line\nsecond",
    ):
        out = await world.say("alice", line)
        assert out.text("alice") == f"{en('share.which_group')}\nMarketing", line
