"""Slack's users.info as proof of a mail address: with the scope users:read.email, a
profile address Slack says is confirmed (is_email_confirmed) becomes the person's
verified address, as `email confirm` would make it; an unconfirmed one does not unless
the workspace's addresses are trusted (PINWALL_SLACK_TRUST_PROFILE_EMAIL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.slack.inbound import user_from_info
from store.db import Database
from store.models import MAIL_PLATFORM
from tests.adapters.test_slack import SlackPinwall, home_element, selected
from tests.fakes.slack import MANIFEST_SCOPES, FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_user("U4DORA", "dora", real_name="Dora Berg", email="Dora.Berg@firma.test")
        server.add_user(
            "U5EVE", "eve", real_name="Eve", email="eve@firma.test", is_email_confirmed=False
        )
        yield server
        assert server.errors == []


@pytest.fixture
async def sp(sqlite_db: Database, fake: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackPinwall]:
    pinwall = SlackPinwall(sqlite_db, fake, tmp_path)
    pinwall.core.settings.running.add(MAIL_PLATFORM)  # mail is set up on this Pinwall
    await pinwall.start()
    try:
        yield pinwall
    finally:
        await pinwall.close()


def _addresses(sp: SlackPinwall, slack_id: str) -> list[str]:
    with sp.db.uow() as uow:
        account = uow.people.account("slack", slack_id)
        assert account is not None
        return [
            a.external_id
            for a in uow.people.accounts_of(account.person_id)
            if a.platform == MAIL_PLATFORM
        ]


async def test_a_confirmed_slack_profile_address_is_the_persons_verified_address(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    await sp.slack.slash_command("U4DORA", "D0DORA", "whoami")
    await sp.slack.slash_command("U5EVE", "D0EVE", "whoami")
    await sp.settled()
    assert _addresses(sp, "U4DORA") == ["dora.berg@firma.test"]
    with sp.db.uow() as uow:
        row = uow.mail.verified("dora.berg@firma.test")
        assert row is not None
        assert row.code is None
        actions = [(e.action, e.details.get("by")) for e in uow.audit.newest(20)]
    assert ("mail.verified", "slack") in actions
    # Slack does not say Eve's address is confirmed: not proof
    assert _addresses(sp, "U5EVE") == []
    # the address is now Dora's: a mail from it counts as hers, `email` says it is hers
    await sp.slack.slash_command("U4DORA", "D0DORA", "email dora.berg@firma.test")
    await sp.settled()
    assert any("already yours" in str(p.text) for p in fake.posted)

    # her App Home offers "by mail" for her groups; Eve's (no address) does not
    await sp.on_console("admin", "/group create marketing Marketing")
    for user in ("U4DORA", "U5EVE"):
        await sp.slack.slash_command(user, fake.dm_channel(user), "join marketing")
        await sp.slack.event(sp.slack.app_home_opened(user))
    await fake.wait_for_async(lambda: {"U4DORA", "U5EVE"} <= set(fake.home_views), what="homes")
    for user, offered in (("U4DORA", True), ("U5EVE", False)):
        select = home_element(fake, user, "pw:notify:marketing")
        assert select is not None
        values = [o["value"] for o in select["options"]]
        assert ("notify.set|marketing:mail" in values) is offered
    await sp.slack.home_select("U4DORA", "pw:notify:marketing", "notify.set|marketing:mail")
    await fake.wait_for_async(
        lambda: selected(fake, "U4DORA", "pw:notify:marketing").endswith(":mail"),
        what="the home republished: by mail",
    )


def test_the_address_needs_the_scope_and_confirmation_or_a_trusted_workspace() -> None:
    with FakeSlack(scopes=[s for s in MANIFEST_SCOPES if s != "users:read.email"]) as server:
        user = server.add_user("U6FINN", "finn", email="finn@firma.test")
    assert "email" not in user["profile"]  # without users:read.email, Slack leaves it out
    assert user_from_info(user, "T0PINWALL").email is None

    eve = {"id": "U5EVE", "team_id": "T0PINWALL", "profile": {"email": "Eve@firma.test"}}
    assert user_from_info({**eve, "is_email_confirmed": False}, "T0PINWALL").email is None
    trusted = user_from_info({**eve, "is_email_confirmed": False}, "T0PINWALL", True)
    assert trusted.email == "eve@firma.test"
    # another workspace's person (Slack Connect) and bots: never
    foreign = {**eve, "team_id": "T0OTHER", "is_email_confirmed": True}
    assert user_from_info(foreign, "T0PINWALL", True).email is None
    bot = {**eve, "is_bot": True, "is_email_confirmed": True}
    assert user_from_info(bot, "T0PINWALL", True).email is None


async def test_the_settings_modal_offers_digests_by_mail_to_who_has_an_address(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    for user, dm in (("U4DORA", "D0DORA"), ("U5EVE", "D0EVE")):
        await sp.slack.slash_command(user, dm, "whoami")
    await sp.settled()

    # Dora has a verified address and mail runs: a third select, showing where digests go
    await sp.slack.slash_command("U4DORA", "D0DORA", "settings")
    await fake.wait_for_async(lambda: bool(fake.views), what="the settings modal")
    view = fake.views[-1].view
    assert view["callback_id"] == "pw:settings"
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert list(blocks) == ["language", "timezone", "digest"]
    digest = blocks["digest"]["element"]
    assert blocks["digest"]["label"]["text"] == "Digests"
    assert [(o["value"], o["text"]["text"]) for o in digest["options"]] == [
        ("messenger", "Here on Slack"),
        ("mail", "By mail"),
    ]
    assert digest["initial_option"]["value"] == "messenger"
    await sp.slack.view_submission("U4DORA", {"digest": "mail"})
    await sp.settled()
    with sp.db.uow() as uow:
        dora = uow.people.by_handle("dora")
        assert dora is not None
        assert dora.digest_by_mail is True
        assert dora.language is None  # only what changed is set

    # in German, showing mail now; back to Slack
    await sp.slack.slash_command("U4DORA", "D0DORA", "settings language de")
    await sp.settled()
    await sp.slack.slash_command("U4DORA", "D0DORA", "settings")
    await fake.wait_for_async(lambda: len(fake.views) == 2, what="the second settings modal")
    blocks = {b["block_id"]: b for b in fake.views[-1].view["blocks"]}
    assert blocks["digest"]["label"]["text"] == "Zusammenfassungen"
    assert blocks["digest"]["element"]["initial_option"]["text"]["text"] == "Per Mail"
    await sp.slack.view_submission("U4DORA", {"digest": "messenger"})
    await sp.settled()
    with sp.db.uow() as uow:
        dora = uow.people.by_handle("dora")
        assert dora is not None
        assert dora.digest_by_mail is False

    # Eve has no address: no such select
    await sp.slack.slash_command("U5EVE", "D0EVE", "settings")
    await fake.wait_for_async(lambda: len(fake.views) == 3, what="Eve's settings modal")
    assert [b["block_id"] for b in fake.views[-1].view["blocks"]] == ["language", "timezone"]
