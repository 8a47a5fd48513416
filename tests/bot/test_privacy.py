"""People lifecycle and privacy, as an operator runs them: `pinwall people` (list, grant,
revoke, deactivate, activate) and `pinwall privacy export|forget`, against a world that
people used through the bot — on SQLite and PostgreSQL. Plus retention by age."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jobs.retention import Retention, apply
from store.blobs import BlobStore
from store.models import (
    AuditEntry,
    Comment,
    HeldMail,
    InboxEvent,
    Item,
    OutboxMessage,
    Person,
    Proposal,
    ProposalStatus,
)
from tests.bot.conftest import Pinwall
from tests.bot.conversation import code_in, en, other_messenger, say_on
from tests.fakes.telegram import png_bytes
from tests.harness import World


async def _marketing(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    await world.say("bob", "/notify marketing instant")
    await world.say("alice", "/share marketing Poster draft for the station")
    await world.say("bob", "/comment #1 Looks great, alice")
    await world.say("alice", "/comment #1 Thanks!")


def person(world: World, handle: str) -> tuple[int, str]:
    """The person's id and role."""
    with world.db.uow() as uow:
        found = uow.people.by_handle(handle)
        assert found is not None
        return found.id, found.role


async def test_people_list_shows_roles_accounts_and_groups(world: World, pinwall: Pinwall) -> None:
    await _marketing(world)
    code, out, _ = pinwall("people", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == "3 people"
    assert any(" alice " in line and "member" in line and "memory:alice" in line for line in lines)
    code, out, _ = pinwall("people", "list", "--json", "--role", "admin")
    assert [p["handle"] for p in json.loads(out)] == ["admin"]


async def test_grant_and_revoke_a_role_are_audited(world: World, pinwall: Pinwall) -> None:
    await _marketing(world)
    assert pinwall("people", "grant", "alice", "gatekeeper")[:2] == (
        0,
        "alice: member -> gatekeeper\n",
    )
    assert person(world, "alice")[1] == "gatekeeper"
    code, _, err = pinwall("people", "revoke", "bob", "admin")
    assert (code, err) == (1, "pinwall people: bob is not admin\n")
    assert pinwall("people", "revoke", "@alice", "gatekeeper")[0] == 0
    assert person(world, "alice")[1] == "member"
    code, _, err = pinwall("people", "revoke", "admin", "admin")
    assert code == 1
    assert "last admin" in err
    with world.db.uow() as uow:
        actions = [e.action for e in uow.audit.newest(10)]
    assert actions.count("role.changed") == 2


async def test_people_revoke_refuses_an_admin_by_the_setting(
    world: World, pinwall: Pinwall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's CLI keeps the same floor as `role`: an admin listed in
    PINWALL_ADMINS stays one until the setting no longer lists them."""
    await _marketing(world)
    assert pinwall("people", "grant", "alice", "admin")[0] == 0
    with world.db.uow() as uow:  # alice on Telegram too, as the setting names her
        alice = uow.people.by_handle("alice")
        assert alice is not None
        uow.people.add_account(
            alice, platform="telegram", external_id="4711", now=world.clock.now()
        )
        uow.commit()
    monkeypatch.setenv("PINWALL_ADMINS", "telegram:4711, telegram:1")
    before = world.snapshot()
    for args in (("revoke", "alice", "admin"), ("grant", "alice", "gatekeeper")):
        code, _, err = pinwall("people", *args)
        assert (code, err) == (
            1,
            "pinwall people: alice is an admin by PINWALL_ADMINS (telegram:4711); "
            "take them out of that setting first\n",
        )
    assert world.snapshot() == before
    monkeypatch.setenv("PINWALL_ADMINS", "telegram:1")
    assert pinwall("people", "revoke", "alice", "admin")[:2] == (0, "alice: admin -> member\n")


async def test_an_unknown_person_is_a_clear_error(world: World, pinwall: Pinwall) -> None:
    await _marketing(world)
    before = world.snapshot()
    code, _, err = pinwall("people", "deactivate", "nobody")
    assert code == 1
    assert "no person 'nobody'" in err
    assert world.snapshot() == before


async def test_a_deactivated_person_gets_nothing_and_cannot_use_pinwall(
    world: World, pinwall: Pinwall
) -> None:
    await _marketing(world)
    out = await world.say("bob", "/invite member marketing")
    code_ = out.to("bob")[0].message.meta["invite_code"]
    assert _marketing_line(3) in (await world.say("alice", "/groups")).text("alice")

    code, out_, _ = pinwall("people", "deactivate", "bob")
    assert code == 0
    assert "bob deactivated" in out_
    assert "invites revoked 1" in out_

    said = await world.say("alice", "/share marketing Second poster")
    assert said.addresses == ["alice"]  # bob was instant: not any more
    assert (await world.say("bob", "/groups")).text("bob") == en("error.deactivated")
    # bob is not counted among the members any more
    assert _marketing_line(2) in (await world.say("alice", "/groups")).text("alice")
    world.adapter.trust = "unknown"
    refused = (await world.say("carol", f"/redeem {code_}")).text("carol")
    assert "carol" not in _handles(world)
    assert refused  # told why
    world.adapter.trust = "member"
    code, out_, _ = pinwall("people", "list")
    assert "bob" not in out_
    assert "bob" in pinwall("people", "list", "--all")[1]

    assert pinwall("people", "activate", "bob")[0] == 0
    said = await world.say("alice", "/share marketing Third poster")
    assert "bob" in said.addresses
    assert _marketing_line(3) in (await world.say("alice", "/groups")).text("alice")


def _marketing_line(count: int) -> str:
    return en("groups.line", slug="marketing", name="Marketing", kind="open", count=count)


def _handles(world: World) -> list[str]:
    with world.db.uow() as uow:
        return list(uow.session.scalars(select(Person.handle)))


async def test_an_export_holds_everything_about_the_person(
    world: World, pinwall: Pinwall, tmp_path: Path
) -> None:
    await _marketing(world)
    target = tmp_path / "alice.json"
    code, out, _ = pinwall("privacy", "export", "alice", "-o", str(target))
    assert code == 0
    assert str(target) in out
    data = json.loads(target.read_text())
    assert data["person"]["handle"] == "alice"
    assert [a["external_id"] for a in data["accounts"]] == ["alice"]
    assert [m["group_id"] for m in data["memberships"]] == [1]
    assert [i["text"] for i in data["items"]] == ["Poster draft for the station"]
    assert [c["text"] for c in data["comments"]] == ["Thanks!"]  # hers, not bob's
    assert all("bob" not in json.dumps(row) for row in data["accounts"])
    with world.db.uow() as uow:
        assert uow.audit.newest(1)[0].action == "privacy.exported"


@pytest.mark.parametrize("posts", ["anonymize", "delete"])
async def test_forget_erases_the_person_and_keeps_the_audit_log_pseudonymized(
    world: World, pinwall: Pinwall, posts: str
) -> None:
    await _marketing(world)
    await world.say("admin", "/role alice gatekeeper")
    alice_id = person(world, "alice")[0]
    with world.db.uow() as uow:
        audited_before = uow.session.scalar(select(func.count()).select_from(AuditEntry))

    code, _, err = pinwall("privacy", "forget", "alice")  # not a terminal: needs --yes
    assert code == 1
    assert "--yes" in err
    code, out, _ = pinwall("privacy", "forget", "alice", "--yes", "--posts", posts)
    assert code == 0
    assert f"alice forgotten, now former-{alice_id}" in out

    with world.db.uow() as uow:
        s = uow.session
        gone = s.get(Person, alice_id)
        assert gone is not None
        assert (gone.handle, gone.display_name, gone.active) == (f"former-{alice_id}",) * 2 + (
            False,
        )
        assert uow.people.account("memory", "alice") is None
        assert uow.groups.memberships_of(alice_id) == []
        items = s.scalars(select(Item)).all()
        comments = s.scalars(select(Comment).order_by(Comment.id)).all()
        if posts == "anonymize":
            assert [(i.text, i.author_id) for i in items] == [
                ("Poster draft for the station", None)
            ]
            assert [(c.text, c.author_id) for c in comments][1] == ("Thanks!", None)
        else:
            assert items == []  # bob's comment on her post went with it
            assert comments == []
        audit = s.scalars(select(AuditEntry)).all()
        assert len(audit) == (audited_before or 0) + 1
        assert all("alice" not in f"{e.subject} {json.dumps(e.details)}" for e in audit)
        assert [e.subject for e in audit if e.action == "role.changed"] == [f"former-{alice_id}"]
        assert (
            s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.person_id == alice_id)
            )
            == 0
        )
        assert all('"alice"' not in json.dumps(e.payload) for e in s.scalars(select(InboxEvent)))
    found = (await world.say("bob", "/search station")).text("bob")
    assert ("#1" in found) == (posts == "anonymize")
    # Her old account is a stranger now: a new person if she comes back.
    assert "alice" not in (await world.say("bob", "/members marketing")).text("bob")


async def test_retention_deletes_by_kind_and_age(world: World) -> None:
    await _marketing(world)
    now = world.clock.now()
    with world.db.uow() as uow:
        uow.items.add(
            Item(
                group_id=1, kind="feed_entry", text="old news", created_at=now - timedelta(days=200)
            )
        )
        uow.items.add(
            Item(group_id=1, kind="note", text="old note", created_at=now - timedelta(days=400))
        )
        uow.commit()
    done = apply(world.db, Retention(feed_entries_days=180), now)
    assert done == {"feed_entries": 1}
    done = apply(world.db, Retention(feed_entries_days=180, posts_days=365), now)
    assert done == {"posts": 1}
    assert apply(world.db, Retention(), now) == {}
    later = now + timedelta(days=31)
    assert apply(world.db, Retention(feed_entries_days=0), later)["received_events"] > 0
    with world.db.uow() as uow:
        texts = [i.text for i in uow.session.scalars(select(Item))]
        assert texts == ["Poster draft for the station"]
        assert uow.audit.newest(1)[0].action == "retention.applied"


async def test_retention_keeps_wrong_codes_and_link_requests_a_day(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await say_on(world, telegram, "666", "/link WRONGCODE1")
    code = code_in((await world.say("alice", "/link")).text("alice"), "link.code", minutes=15)
    await say_on(world, telegram, "4711", f"/link {code}")
    now = world.clock.now()
    assert apply(world.db, Retention(), now + timedelta(hours=23)) == {}
    done = apply(world.db, Retention(), now + timedelta(hours=25))
    assert done == {"code_failures": 1, "link_requests": 1}
    with world.db.uow() as uow:
        assert uow.links.count_failures() == 0


def _attach(world: World, store: BlobStore, item_id: int, *files: bytes) -> list[str]:
    blobs = [store.put(data) for data in files]
    with world.db.uow() as uow:
        for blob in blobs:
            uow.blobs.record(blob, world.clock.now())
        uow.blobs.attach(item_id, [(blob.id, "poster.png") for blob in blobs])
        uow.commit()
    return [blob.id for blob in blobs]


async def test_forget_with_deleted_posts_removes_their_files_unless_shared(
    world: World, pinwall: Pinwall, tmp_path: Path
) -> None:
    await _marketing(world)
    await world.say("bob", "/share marketing The same poster, reposted")
    store = BlobStore(tmp_path / "data" / "blobs")
    hers, shared = _attach(world, store, 1, png_bytes(4, 4), png_bytes(8, 8))
    _attach(world, store, 2, png_bytes(8, 8))  # bob's post carries the same file

    code, out, _ = pinwall("privacy", "forget", "alice", "--yes", "--posts", "delete")
    assert code == 0
    assert "files deleted 1" in out
    assert not store.exists(hers)
    assert store.exists(shared)
    with world.db.uow() as uow:
        assert uow.blobs.get(hers) is None
        assert uow.blobs.get(shared) is not None


async def test_retention_removes_the_files_of_deleted_posts(world: World, tmp_path: Path) -> None:
    await _marketing(world)
    store = BlobStore(tmp_path / "blobs")
    [blob] = _attach(world, store, 1, png_bytes(4, 4))
    stray = store.put(b"a download whose share never happened").id
    now = world.clock.now()
    assert apply(world.db, Retention(posts_days=1), now, store) == {}  # the post is young
    later = now + timedelta(days=400)
    done = apply(world.db, Retention(posts_days=365), later, store)
    assert done["posts"] == 1
    assert done["files"] == 2
    assert not store.exists(blob)
    assert not store.exists(stray)


async def test_a_forgotten_persons_proposals_that_are_not_public_yet_are_withdrawn(
    world: World, pinwall: Pinwall
) -> None:
    """Nothing of an erased person is approved for a public network afterwards: her pending
    proposal is withdrawn by `forget`, and a gatekeeper's approve is refused."""
    await world.say("admin", "/help")
    await world.say("alice", "/help")
    await world.say("bob", "/help")
    await world.say("admin", "/role bob gatekeeper")
    await world.say("alice", "/propose newsroom My personal story, by Alice Meier")
    code, out, _ = pinwall("privacy", "forget", "alice", "--yes", "--posts", "delete")
    assert code == 0
    assert "proposals withdrawn 1" in out
    with world.db.uow() as uow:
        proposal = uow.session.scalars(select(Proposal)).one()
        assert proposal.status == ProposalStatus.WITHDRAWN
    await world.say("bob", "/approve P1")
    with world.db.uow() as uow:
        assert uow.session.scalars(select(Proposal)).one().status == ProposalStatus.WITHDRAWN


async def test_forget_leaves_no_account_of_the_person_in_the_audit_log(
    world: World, pinwall: Pinwall
) -> None:
    """The audit log names people by handle and by account ("memory:alice" of a wrong
    code): after forget, neither is left."""
    await world.say("alice", "/help")
    await world.say("alice", "/redeem WRONGCODE1")
    await world.say("alice", "/link")
    assert pinwall("privacy", "forget", "alice", "--yes")[0] == 0
    with world.db.uow() as uow:
        entries = uow.session.scalars(select(AuditEntry)).all()
        said = [f"{e.subject} {json.dumps(e.details)}" for e in entries]
    assert said
    assert not [s for s in said if "alice" in s]


async def test_a_moderators_export_names_what_they_decided_not_other_peoples_mails(
    world: World, pinwall: Pinwall, tmp_path: Path
) -> None:
    """Bob dropped someone else's held mail: his export says which and how he decided,
    but carries nothing of the mail (sender, subject, text are the other person's)."""
    await world.say("bob", "/help")
    with world.db.uow() as uow:
        bob = uow.people.by_handle("bob")
        assert bob is not None
        uow.session.add(
            HeldMail(
                person_id=None,
                sender="dr.schmidt@clinic.example",
                subject="Befund Carol Weber",
                content={"to": ["group:board"], "text": "Diagnosis for Carol: ..."},
                held_at=world.clock.now(),
                status="dropped",
                decided_by=bob.id,
                decided_at=world.clock.now(),
            )
        )
        uow.commit()
    target = tmp_path / "bob.json"
    assert pinwall("privacy", "export", "bob", "-o", str(target))[0] == 0
    data = json.loads(target.read_text())
    assert [d["status"] for d in data["held_mails_decided"]] == ["dropped"]
    assert "held_mails" not in data
    assert "clinic" not in json.dumps(data)
    assert "Carol" not in json.dumps(data)
