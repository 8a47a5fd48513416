"""The Teams adapter over real HTTP: activities signed with FakeTeams' test key into
Pinwall's /teams/messages, the Bot Connector, token endpoint and JWKS answered by
FakeTeams, a console member beside it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sqlalchemy import func, select

from store.db import Database
from store.models import InboxEvent, Item, OutboxMessage
from tests.adapters.conftest import BOSS, FRANZ, humans
from tests.adapters.teams_world import (
    ALICE,
    BOB,
    MARKET,
    TEAMS_WORLD,
    TeamsPinwall,
    personal,
    updated,
)
from tests.fakes.synapse import Synapse
from tests.fakes.teams import APP_ID, TENANT, FakeTeams, wait_until
from tests.fakes.telegram import FakeTelegram

pytest_plugins = [TEAMS_WORLD]


def count(db: Database, model: object) -> int:
    with db.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def test_a_command_in_personal_chat_is_answered_in_the_persons_language(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = tp.user(ALICE, "Alice", locale="de-DE")
    bob = tp.user(BOB, "Bob", locale="en-US")
    assert (await alice.says("help")).status_code == 200
    assert (await bob.says("/help")).status_code == 200
    german = await tp.said_to(personal(ALICE), "Das kannst du tun:")
    english = await tp.said_to(personal(BOB), "Here is what you can do:")
    assert german.method == english.method == "POST"
    assert teams.token_requests[0]["scope"] == "https://api.botframework.com/.default"


async def test_a_share_from_personal_chat_reaches_a_console_member(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = tp.user(ALICE, "Alice")
    await tp.group_joined("marketing", "Marketing", alice, reader="carla")
    await alice.says("share marketing https://example.com/poster Plakat am Bahnhof")
    post = await tp.printed_eventually("carla", "Plakat am Bahnhof")
    assert "via Teams in Marketing" in post
    await tp.said_to(personal(ALICE), "Geteilt als #1")


async def test_a_channel_mention_is_a_command_and_bridges_the_channel(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    await tp.on_console("admin", "/group create marketing Marketing")
    alice = tp.user(ALICE, "Alice")
    assert (await alice.mentions(MARKET, "bridge marketing")).status_code == 200
    await tp.said_to(MARKET, "verbunden")
    # A post from the console arrives in the channel as a card, proactively.
    await tp.on_console("admin", "/join marketing")
    await tp.on_console("admin", "/share marketing https://example.com/k Neuer Katalog")
    relayed = await tp.said_to(MARKET, "Neuer Katalog")
    card = relayed.card()
    assert card["type"] == "AdaptiveCard"
    assert any(a["type"] == "Action.Execute" for a in card["actions"])
    # A reply in the post's thread is a comment on it.
    await alice.post(
        alice.activity(
            "message", alice.channel(MARKET, relayed.activity_id), text="Hängt bei uns schon!"
        )
    )
    await tp.printed_eventually("admin", "Hängt bei uns schon!")


async def test_forged_or_missing_tokens_get_401_and_change_nothing(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = tp.user(ALICE, "Alice")
    activity = alice.activity("message", alice.personal(), text="group create evil Evil")
    forged = await alice.post(activity, token=teams.signed(forged=True))
    other_bot = await alice.post(activity, token=teams.signed(audience="another-bot"))
    expired = await alice.post(activity, token=teams.signed(exp=1_000_000, iat=999_000))
    wrong_service = await alice.post(
        activity, token=teams.signed(serviceurl="https://evil.example")
    )
    missing = await alice.post(activity, token="")
    answers = [r.status_code for r in (forged, other_bot, expired, wrong_service, missing)]
    assert answers == [401, 401, 401, 401, 401]
    # Signed, but no activity (the token's service URL has nothing to match): refused too.
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {teams.signed()}"}
        broken = await http.post(tp.endpoint, content=b"{not json", headers=headers)
        huge = await http.post(tp.endpoint, content=b"x" * 1_100_000, headers=headers)
    assert (broken.status_code, huge.status_code) == (401, 413)
    assert count(tp.db, InboxEvent) == 0
    assert count(tp.db, OutboxMessage) == 0
    assert teams.sent == []


async def test_a_signed_activity_from_web_chat_or_without_a_tenant_changes_nothing(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    """The Azure bot's Web Chat and Direct Line channels are signed like Teams, but there
    the client names the sender: an activity naming Alice (an admin) from there, or one
    without a tenant, is refused (403, logged) and acts as nobody."""
    alice = tp.user(ALICE, "Alice", locale="en-US")
    assert (await alice.says("help")).status_code == 200  # Alice is known (an admin)
    await tp.said_to(personal(ALICE), "Here is what you can do")
    inbox = count(tp.db, InboxEvent)

    forged = alice.activity(
        "message", {"id": "dl-conversation-1"}, text="group create leak Leak --secret"
    )
    forged["channelId"] = "webchat"  # Direct Line: no conversationType, no tenant
    forged.pop("channelData", None)
    forged["conversation"].pop("tenantId", None)
    no_tenant = alice.activity("message", alice.personal(), text="group create leak Leak")
    no_tenant.pop("channelData", None)
    no_tenant["conversation"].pop("tenantId", None)
    answers = [(await alice.post(a)).status_code for a in (forged, no_tenant)]
    assert answers == [403, 403]
    assert count(tp.db, InboxEvent) == inbox
    with tp.db.uow() as uow:
        assert uow.groups.by_slug("leak") is None


async def test_an_unsigned_body_is_refused_before_it_is_read(tp: TeamsPinwall) -> None:
    """No token: 401 at once, whatever the body (40 MB here); a signed one that says it is
    too large is refused before it is read."""
    body = b"{" + b" " * (40 * 1024 * 1024) + b"}"
    async with httpx.AsyncClient(timeout=60) as http:
        answer = await http.post(tp.endpoint, content=body)
    assert answer.status_code == 401


async def test_a_429_from_the_connector_is_retried_after_its_retry_after(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    await tp.channel_bridged()
    teams.throttle(2, retry_after=0.4)
    await tp.on_console("admin", "/join marketing", "/share marketing Neuer Katalog")
    await tp.said_to(MARKET, "Neuer Katalog")
    assert teams.throttled == 2
    assert teams.early == []  # nothing was sent before the Retry-After was up


async def test_a_non_gatekeeper_press_on_an_approval_card_is_refused(
    tp_any: TeamsPinwall, teams: FakeTeams
) -> None:
    tp = tp_any
    bob = await tp.known(BOB, "Bob")
    carl = await tp.known("29:carl-id", "Carl")
    await tp.on_console("admin", "/role bob gatekeeper")
    await tp.on_console("alice", "/propose newsroom Our new store opens on Monday!")
    card = await tp.said_to(personal(BOB), "Our new store opens on Monday!")
    assert "Or: approve P1 · reject P1" in card.text  # typed as is in personal chat
    assert "@Pinwall" not in card.text
    # Carl is no gatekeeper: his press (a forwarded card, a crafted invoke) decides nothing,
    # as Action.Execute and as Action.Submit (a message carrying the press).
    refused = await carl.presses(card, "Approve")
    assert refused.status_code == 200
    await tp.said_to(personal("29:carl-id"), "Only gatekeepers and admins can do that.")
    [approve] = [a for a in card.card()["actions"] if a.get("title") == "Approve"]
    submit = carl.activity(
        "message", carl.personal(), replyToId=card.activity_id, value=approve["data"]
    )
    assert (await carl.post(submit)).status_code == 200
    await wait_until(
        lambda: sum("Only gatekeepers" in s.text for s in teams.to(personal("29:carl-id"))) == 2,
        "the second refusal",
    )
    with tp.db.uow() as uow:
        from store.models import Proposal

        assert uow.session.scalars(select(Proposal.status)).all() == ["pending"]
    # Bob's press approves, and his card is updated in place.
    assert (await bob.presses(card, "Approve")).status_code == 200
    await wait_until(lambda: updated(teams, card, "Approved by"), "the card updated in place")
    await tp.printed_eventually("alice", "was approved by @bob")


async def test_reactions_count_as_likes_and_the_bot_ignores_its_own_activities(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = await tp.channel_bridged()
    await tp.on_console("admin", "/join marketing", "/share marketing Neuer Katalog")
    relayed = await tp.said_to(MARKET, "Neuer Katalog")
    reaction = alice.activity(
        "messageReaction",
        alice.channel(MARKET),
        replyToId=relayed.activity_id,
        reactionsAdded=[{"type": "like"}],
    )
    assert (await alice.post(reaction)).status_code == 200
    mine = alice.activity("message", alice.personal(), text="help")
    mine["from"] = {"id": f"28:{APP_ID}", "name": "Pinwall"}
    assert (await alice.post(mine)).status_code == 200

    def likes() -> int:
        with tp.db.uow() as uow:
            return uow.items.stats([1])[1].reactions

    await wait_until(lambda: likes() == 1, "the like")
    assert count(tp.db, Item) == 1


async def test_a_bridged_telegram_group_and_teams_channel_carry_each_others_posts(
    sqlite_db: Database, teams: FakeTeams, tmp_path: Path
) -> None:
    with FakeTelegram() as telegram:
        admins = frozenset({("teams", ALICE), ("telegram", str(BOSS.id))})
        async with TeamsPinwall(sqlite_db, teams, tmp_path, admins=admins, telegram=telegram) as tp:
            alice = await tp.channel_bridged()
            branch = await tp.telegram_group_bridged("Filiale Nord")
            # A message in the Telegram group is a post of the group: it shows in Teams.
            telegram.user_sends_text(BOSS, branch, "Unser Schaufenster https://example.com/window")
            relayed = await tp.said_to(MARKET, "Unser Schaufenster")
            assert "via Telegram" in relayed.text
            # A message in the Teams channel (read with the manifest's RSC permission)
            # is a post too, and shows in the Telegram group.
            said = alice.activity(
                "message", alice.channel(MARKET), text="Neuer Flyer https://example.com/flyer"
            )
            assert (await alice.post(said)).status_code == 200
            await telegram.wait_for_async(
                lambda: any("Neuer Flyer" in (s.text or "") for s in telegram.sent_to(branch.id)),
                what="the Teams post in the Telegram group",
            )
            [shown] = [s for s in telegram.sent_to(branch.id) if "Neuer Flyer" in (s.text or "")]
            assert "via Teams" in (shown.text or "")
        assert telegram.errors == []


async def test_guests_of_the_tenant_and_people_of_other_tenants_are_externals(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    teams.guests.add("29:gus-id")
    gus = tp.user("29:gus-id", "Gus", locale="en-US")
    other = tp.user(
        "29:olga-id", "Olga", locale="en-US", tenant="99999999-0000-4000-8000-000000000000"
    )
    await gus.says("whoami")
    await other.says("whoami")
    await tp.said_to(personal("29:gus-id"), "(guest)")
    await tp.said_to(personal("29:olga-id"), "(guest)")
    await tp.known("29:carl-id", "Carl")
    # Sam writes in a channel shared with another company: his account is theirs.
    teams.tenants["29:sam-id"] = "99999999-0000-4000-8000-000000000000"
    sam = tp.user("29:sam-id", "Sam", locale="en-US")
    await sam.mentions(MARKET, "whoami")
    await tp.said_to(personal("29:sam-id"), "(guest)")
    with tp.db.uow() as uow:
        people = {h: uow.people.by_handle(h) for h in ("gus", "olga", "carl", "sam")}
        roles = {h: p.role if p else None for h, p in people.items()}
    assert roles == {
        "gus": "guest",
        "olga": "guest",
        "carl": "member",
        "sam": "guest",
    }
    assert teams.roster_requests == ["29:gus-id", "29:carl-id", "29:sam-id"]  # once each


async def test_link_codes_are_given_in_personal_chat_only(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = tp.user(ALICE, "Alice")
    await alice.mentions(MARKET, "link")
    code = await tp.said_to(personal(ALICE), "Dein Verknüpfungscode")
    # In the channel only a pointer to the personal chat, never the code.
    [pointer] = [s.text for s in teams.to(MARKET)]
    assert "privaten Chat" in pointer
    assert code.text.split("**")[1] not in pointer
    # She had never written to the bot in personal chat: Pinwall opened it, proactively.
    [created] = teams.created
    assert created["members"] == [{"id": ALICE}]
    assert created["tenantId"] == TENANT


async def test_an_approval_in_teams_updates_the_card_on_telegram_too(
    sqlite_db: Database, teams: FakeTeams, tmp_path: Path
) -> None:
    with FakeTelegram() as telegram:
        async with TeamsPinwall(sqlite_db, teams, tmp_path, telegram=telegram) as tp:
            bob = await tp.known(BOB, "Bob")
            # Franz, a member on Telegram by invite, is the other gatekeeper.
            await tp.on_console("admin", "/group create team Team", "/invite member team")
            link = re.search(r"start=(\w{10})", tp.printed("admin")[-1])
            assert link is not None
            telegram.user_starts(FRANZ, link.group(1))
            await telegram.wait_for_async(
                lambda: any("Willkommen" in (s.text or "") for s in telegram.sent_to(FRANZ.id))
            )
            await tp.on_console("admin", "/role bob gatekeeper", "/role franz_nord gatekeeper")
            await tp.on_console("alice", "/propose newsroom Our new store opens on Monday!")
            card = await tp.said_to(personal(BOB), "Our new store opens on Monday!")
            await telegram.wait_for_async(
                lambda: any("new store" in (s.text or "") for s in telegram.sent_to(FRANZ.id)),
                what="the card on Telegram",
            )
            assert (await bob.presses(card, "Approve")).status_code == 200
            await tp.said_to(personal(BOB), "Approved by")
            await telegram.wait_for_async(
                lambda: any(
                    e.chat_id == FRANZ.id and "@bob" in (e.text or "") for e in telegram.edits
                ),
                what="the Telegram card edited in place",
            )
        assert telegram.errors == []


async def test_removing_the_app_from_personal_chat_stops_deliveries_there(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    bob = await tp.known(BOB, "Bob")
    removed = bob.activity("installationUpdate", bob.personal(), action="remove")
    assert (await bob.post(removed)).status_code == 200
    with tp.db.uow() as uow:
        account = uow.people.account("teams", BOB)
        assert account is not None
        assert not account.reachable


async def test_a_link_shared_in_teams_reaches_the_bridged_telegram_group_and_matrix_room(
    sqlite_db: Database, teams: FakeTeams, tmp_path: Path, synapse: Synapse
) -> None:
    """The issue's acceptance: one group, bridged to a Teams channel, a Telegram group chat
    and a Matrix room; a link shared in Teams shows in the other two."""
    bot = synapse.register("pinwall-teams")
    with FakeTelegram() as telegram:
        async with humans(synapse, "mboss") as [mboss]:
            admins = frozenset(
                {("teams", ALICE), ("telegram", str(BOSS.id)), ("matrix", mboss.user_id)}
            )
            async with TeamsPinwall(
                sqlite_db, teams, tmp_path, admins=admins, telegram=telegram, matrix=(synapse, bot)
            ) as tp:
                alice = await tp.channel_bridged()
                branch = await tp.telegram_group_bridged("Filiale Süd")
                room = await mboss.room(bot.user_id, name="Marketing")
                await mboss.say(room, "!pw bridge marketing")
                await mboss.bot_said(room, bot.user_id, "now connected")
                said = alice.activity(
                    "message", alice.channel(MARKET), text="Messestand https://example.com/stand"
                )
                assert (await alice.post(said)).status_code == 200
                await telegram.wait_for_async(
                    lambda: any(
                        "Messestand" in (s.text or "") for s in telegram.sent_to(branch.id)
                    ),
                    what="the Teams post in the Telegram group",
                )
                shown = await mboss.bot_said(room, bot.user_id, "Messestand")
                assert "via Teams" in shown["content"]["body"]
        assert telegram.errors == []
