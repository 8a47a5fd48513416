"""Polls and announcements in Teams, over real HTTP against FakeTeams: the vote buttons
and Read ✓ as Adaptive Card actions, pressed in Teams, the cards updated in place; usage
lines as a Teams channel needs them (after @Pinwall) and as personal chat does; taking a
like back."""

from __future__ import annotations

import logging

import pytest

from tests.adapters.teams_world import (
    ALICE,
    BOB,
    MARKET,
    TEAMS_WORLD,
    TeamsPinwall,
    personal,
    updated,
)
from tests.fakes.teams import FakeTeams, Sent, wait_until

pytest_plugins = [TEAMS_WORLD]


def titles(sent: Sent) -> list[str]:
    return [a["title"] for a in sent.card().get("actions") or []]


async def test_a_console_poll_is_voted_in_teams_and_the_tally_updates_the_teams_cards(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = await tp.channel_bridged()
    bob = tp.user(BOB, "Bob", locale="en-US")
    for person in (alice, bob):
        await person.says("join marketing")
        await person.says("notify marketing instant")
    await tp.on_console("admin", "/poll marketing Welcher Termin? | 12.1. | 19.1.")

    # Each person's card in their language, one Action.Execute per option carrying the
    # poll and the option; the channel's card (a live card) the same.
    german = await tp.said_to(personal(ALICE), "Welcher Termin?")
    english = await tp.said_to(personal(BOB), "Welcher Termin?")
    channel = await tp.said_to(MARKET, "Welcher Termin?")
    assert "Umfrage" in german.text
    assert "Poll" in english.text
    for card in (german, english, channel):
        assert titles(card) == ["1. 12.1.", "2. 19.1."]
        actions = card.card()["actions"]
        assert {a["type"] for a in actions} == {"Action.Execute"}
        assert [a["data"] for a in actions] == [{"pw": "poll.vote|1:0"}, {"pw": "poll.vote|1:1"}]

    # Alice votes in her personal chat: her own card shows her vote in place.
    assert (await alice.presses(german, "1. 12.1.")).status_code == 200
    await wait_until(lambda: updated(teams, german, "✓ 1. 12.1.: 1"), "Alice's card with her vote")
    # Bob votes on the channel's card: the channel's card counts both, in place.
    assert (await bob.presses(channel, "1. 12.1.")).status_code == 200
    await wait_until(lambda: updated(teams, channel, "12.1.: 2"), "the channel card's tally")
    # The channel's card is everyone's: it never shows Bob's own mark.
    shown = [s.text for s in teams.sent if s.activity_id == channel.activity_id]
    assert "2 people voted" in shown[-1]  # a room's card: the default language
    assert not any("✓ 1." in text for text in shown)
    # The admin's own card on the console counts the same.
    await tp.printed_eventually("admin", "12.1.: 2")
    with tp.db.uow() as uow:
        assert uow.announcements.tally(1) == ({0: 2}, 2)


async def test_an_announcement_is_confirmed_in_teams_with_its_read_button(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = tp.user(ALICE, "Alice", locale="de-DE")
    bob = tp.user(BOB, "Bob", locale="en-US")
    await tp.group_joined("filialen", "Filialen", alice, bob)
    await tp.on_console("admin", "/announce filialen Neue Hygieneregeln ab Montag --confirm")
    await tp.printed_eventually("admin", "Read ✓: 0/2")
    german = await tp.said_to(personal(ALICE), "Hygieneregeln")
    english = await tp.said_to(personal(BOB), "Hygieneregeln")
    assert titles(german) == ["Gelesen ✓"]
    assert titles(english) == ["Read ✓"]
    [read] = german.card()["actions"]
    assert (read["type"], read["data"], read.get("style")) == (
        "Action.Execute",
        {"pw": "announce.confirm|1"},
        "positive",
    )
    assert (await alice.presses(german, "Gelesen ✓")).status_code == 200
    # Her copy says so in place and has no button any more; the admin's card counts it.
    await wait_until(lambda: updated(teams, german, "du hast sie am"), "her copy confirmed")
    last = [s for s in teams.sent if s.activity_id == german.activity_id][-1]
    assert titles(last) == []
    await tp.printed_eventually("admin", "Read ✓: 1/2")
    assert (await bob.presses(english, "Read ✓")).status_code == 200
    await wait_until(lambda: updated(teams, english, "You confirmed it"), "his copy confirmed")
    await tp.printed_eventually("admin", "Read ✓: 2/2")


async def test_usage_lines_in_a_channel_name_the_bot_and_in_personal_chat_do_not(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = tp.user(ALICE, "Alice", locale="de-DE")
    bob = tp.user(BOB, "Bob", locale="en-US")
    await tp.group_joined("marketing", "Marketing", alice, bob)
    await alice.says("poll marketing Welcher Tag?")
    await bob.says("poll marketing Which day?")
    await alice.mentions(MARKET, "poll marketing Welcher Tag?")
    german = await tp.said_to(personal(ALICE), "Umfrage braucht")
    english = await tp.said_to(personal(BOB), "A poll needs")
    in_channel = await tp.said_to(MARKET, "Umfrage braucht")
    # Personal chat: typed as is, no "/" and no mention.
    assert "So geht's: umfrage <gruppe> <Frage" in german.text
    assert "Zum Beispiel: umfrage marketing" in german.text
    assert "Usage: poll <group> <question" in english.text
    assert "For example: poll marketing" in english.text
    assert "@Pinwall" not in german.text + english.text
    # A channel: only a mention reaches the bot, so the usage and the example say it.
    assert "So geht's: @Pinwall umfrage <gruppe> <Frage" in in_channel.text
    assert "Zum Beispiel: @Pinwall umfrage marketing" in in_channel.text
    await bob.mentions(MARKET, "help share")
    helped = await tp.said_to(MARKET, "@Pinwall share <group>")
    assert "/share" not in helped.text
    # A private command's refusal goes to the personal chat, and is typed as there.
    await alice.mentions(MARKET, "notify marketing oft")
    private = await tp.said_to(personal(ALICE), "**oft**")
    assert "So geht's: " in private.text
    assert "<gruppe> instant|daily|weekly|mute" in private.text
    assert "@Pinwall" not in private.text


async def test_an_approval_card_in_a_teams_channel_names_the_bot_in_its_hint(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    """A card sent outside a command's answer, to a channel (the gatekeepers' room): its
    hint says the commands as they are typed there."""
    gate = "19:gatekeepers@thread.tacv2"
    alice = tp.user(ALICE, "Alice")  # an admin
    await alice.mentions(gate, "bridge gatekeepers")
    await tp.said_to(gate, "Freigabe")
    await tp.known(BOB, "Bob")
    await tp.on_console("admin", "/role bob gatekeeper")
    await tp.on_console("carla", "/propose newsroom Our new store opens on Monday!")
    in_channel = await tp.said_to(gate, "Our new store opens on Monday!")
    assert "Or: @Pinwall approve P1 · @Pinwall reject P1" in in_channel.text
    # (In personal chat the same card's hint has no mention: test_teams.py's
    # test_a_non_gatekeeper_press_on_an_approval_card_is_refused.)


async def test_taking_a_like_back_in_teams_undoes_it_and_the_card_shows_it(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = await tp.channel_bridged()
    await tp.on_console("admin", "/join marketing", "/share marketing Neuer Katalog")
    relayed = await tp.said_to(MARKET, "Neuer Katalog")

    def likes() -> int:
        with tp.db.uow() as uow:
            return uow.items.stats([1])[1].reactions

    def reacts(field: str) -> dict[str, object]:
        return alice.activity(
            "messageReaction",
            alice.channel(MARKET),
            replyToId=relayed.activity_id,
            **{field: [{"type": "like"}]},
        )

    def card_now() -> str:
        return [s.text for s in teams.sent if s.activity_id == relayed.activity_id][-1]

    assert (await alice.post(reacts("reactionsAdded"))).status_code == 200
    await wait_until(lambda: likes() == 1, "the like")
    await wait_until(lambda: "👍 1" in card_now(), "the card with one like")
    assert (await alice.post(reacts("reactionsRemoved"))).status_code == 200
    await wait_until(lambda: likes() == 0, "the like taken back")
    await wait_until(lambda: "👍 1" not in card_now(), "the card without the like")
    # Given again: a new activity, counted again (not taken for a repeat of the first).
    assert (await alice.post(reacts("reactionsAdded"))).status_code == 200
    await wait_until(lambda: likes() == 1, "the like given again")


async def test_a_file_to_a_personal_chat_is_uploaded_after_the_persons_consent(
    tp: TeamsPinwall, teams: FakeTeams, caplog: pytest.LogCaptureFixture
) -> None:
    alice = tp.user(ALICE, "Alice", locale="de-DE")  # an admin
    await tp.group_joined("filialen", "Filialen", alice)
    await alice.says("announce filialen Bitte lesen --confirm")
    await tp.said_to(personal(ALICE), "Gelesen ✓: 0/1")
    await alice.says("announcement A1 csv")
    # The message names the file (with its signed link); after it, the file is offered
    # for upload with a consent card of its own.
    await wait_until(lambda: len(consents(teams)) == 1, "the offer")
    [offer] = consents(teams)
    [consent] = offer.body["attachments"]
    assert consent["name"] == "A1-confirmations.csv"
    assert consent["contentType"] == "application/vnd.microsoft.teams.card.file.consent"
    assert consent["content"]["sizeInBytes"] > 0
    [message] = [s for s in teams.to(personal(ALICE)) if "/files/" in s.text]
    assert int(message.activity_id) == int(offer.activity_id) - 1
    # A forged context (another blob, a made-up signature) uploads nothing, and the
    # card stays.
    caplog.set_level(logging.WARNING, logger="adapters.teams")
    forged = {**consent["content"]["acceptContext"], "blob": "0" * 64}
    answer = await alice.answers_file_consent(offer, "A1-confirmations.csv", context=forged)
    assert answer.status_code == 200
    renamed = {**consent["content"]["acceptContext"], "name": "gehalt.xlsx"}
    await alice.answers_file_consent(offer, "A1-confirmations.csv", context=renamed)
    assert teams.uploads == {}
    assert [r.getMessage() for r in caplog.records].count(
        "Teams: a file consent for no file Pinwall offered; nothing uploaded"
    ) == 2
    # An upload URL that is no SharePoint's (nor the Bot Connector's): refused.
    inside = "http://169.254.169.254/latest/upload"
    await alice.answers_file_consent(offer, "A1-confirmations.csv", upload_url=inside)
    assert any("refused to upload to http://169.254" in r.getMessage() for r in caplog.records)
    assert not any(s.method == "PUT" for s in teams.sent)
    # Declined: nothing uploaded, and the card says so in its place, in her language.
    await alice.answers_file_consent(offer, "A1-confirmations.csv", accept=False)
    assert teams.uploads == {}
    [declined] = [s for s in teams.sent if s.method == "PUT"]
    assert (declined.activity_id, declined.body["text"]) == (
        offer.activity_id,
        "A1-confirmations.csv: nicht gesendet.",
    )
    assert "attachments" not in declined.body
    # Offered again, to Alice now speaking English, and allowed: the bytes go to the
    # upload session, the file shows in the chat as Teams' file card, and the consent
    # card is replaced by the upload's outcome.
    await alice.says("settings language en")
    await alice.says("announcement A1 csv")
    await wait_until(lambda: len(consents(teams)) == 2, "the second offer")
    again = consents(teams)[-1]
    assert (await alice.answers_file_consent(again, "A1-confirmations.csv")).status_code == 200
    uploaded = teams.uploads["drive-item-A1-confirmations.csv"]
    assert uploaded.decode().splitlines()[0] == "handle,confirmed,confirmed_at,messenger"
    shown = await tp.said_to(personal(ALICE), '"fileType": "csv"')
    [card] = shown.body["attachments"]
    assert card["contentType"] == "application/vnd.microsoft.teams.card.file.info"
    assert card["contentUrl"].endswith("/personal/drive-item-A1-confirmations.csv")
    assert card["name"] == "A1-confirmations.csv"
    assert card["content"] == {"uniqueId": "drive-item-A1-confirmations.csv", "fileType": "csv"}
    assert updated(teams, again, "📎 Uploaded: A1-confirmations.csv")
    assert not updated(teams, offer, "Uploaded")


def consents(teams: FakeTeams) -> list[Sent]:
    """The consent cards Pinwall sent (POST), oldest first."""
    kind = "application/vnd.microsoft.teams.card.file.consent"
    return [
        s
        for s in teams.sent
        if s.method == "POST"
        and any(a["contentType"] == kind for a in s.body.get("attachments") or [])
    ]
