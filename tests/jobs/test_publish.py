"""Publishing approved proposals: the newsroom feed (parsed back with feedparser), the
signed webhook against a local receiver that checks the signature, retries with
backoff, uncertain outcomes flagged and never repeated, a crash between publishing and
recording, expiry, simultaneous approvals, and the outlet settings."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import httpx
import pytest
from aiohttp import web

from app.config import load_settings
from app.http import create_app
from bot.config import outlet_settings
from bot.errors import ConfigError
from bot.markup import to_plain
from bot.outlets import DEFAULT_LIMITS, NEWSROOM_SPEC, OutletSettings, OutletSpec
from jobs.outlets import create_publisher
from jobs.outlets.base import OutletContext
from jobs.outlets.newsroom import feed_routes, render_feed
from jobs.outlets.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from jobs.publish import PublishJob
from store.models import NewsroomEntry, ProposalStatus
from tests.bot.conversation import en
from tests.harness import World

SECRET = "webhook-secret"
PUBLIC = "https://pinwall.example"


@dataclass
class Receiver:
    """An agency's system: checks each POST's signature, then answers as scripted."""

    url: str = ""
    posts: list[dict[str, object]] = field(default_factory=list)
    refused: int = 0
    # per request: a status, or "slow" (answers after the publisher gave up)
    script: deque[int | str] = field(default_factory=deque)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        if not verify(SECRET, timestamp, body, signature, now=time.time()):
            self.refused += 1
            return web.Response(status=401)
        self.posts.append(json.loads(body))
        action = self.script.popleft() if self.script else 200
        if action == "slow":
            await asyncio.sleep(1.5)
        elif isinstance(action, int) and action != 200:
            return web.Response(status=action)
        n = len(self.posts)
        return web.json_response({"id": f"r{n}", "url": f"https://agency.example/{n}"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


def webhook_spec(url: str, **options: object) -> OutletSpec:
    return OutletSpec(
        "agency",
        "webhook",
        options={"url": url, "timeout": 0.5, **options},
        token=SECRET,
        limits=DEFAULT_LIMITS["webhook"],
    )


def job_for(world: World, tmp_path: Path, *specs: OutletSpec) -> PublishJob:
    outlets = OutletSettings((NEWSROOM_SPEC, *specs))
    world.core.settings = replace(world.core.settings, outlets=outlets)
    context = OutletContext(db=world.db, public_url=PUBLIC, data_dir=tmp_path, timeout=0.5)
    return PublishJob(world.hub, outlets, context)


async def approved(world: World, line: str, proposal: int = 1) -> None:
    for name in ("bob", "alice"):
        await world.say(name, "/whoami")
    await world.say("admin", "/role bob gatekeeper")
    await world.say("alice", line)
    await world.say("bob", f"/approve P{proposal}")


def proposal(world: World, number: int = 1) -> tuple[str, int, str | None, str | None]:
    with world.db.uow() as uow:
        p = uow.proposals.get(number)
        assert p is not None
        return p.status, p.attempts, p.url, p.last_error


async def tick(world: World, job: PublishJob) -> list[str]:
    """One publish tick; what the people were told meanwhile (plain text)."""
    before = len(world.adapter.sent)
    await job.run(world.clock.now())
    await world.worker.drain()
    return [f"{s.target.address}: {to_plain(s.message.text)}" for s in world.adapter.sent[before:]]


async def feed_of(world: World, outlets: OutletSettings) -> feedparser.FeedParserDict:
    app = create_app(world.hub, list(feed_routes(world.hub, outlets, PUBLIC)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/public/newsroom.atom")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/atom+xml")
        missing = await client.get("/public/agency.atom")
        assert missing.status_code == 404
    return feedparser.parse(response.content)


async def test_the_newsroom_publishes_once_and_its_feed_parses_back(
    world: World, tmp_path: Path
) -> None:
    job = job_for(world, tmp_path)
    text = 'Grand opening <b>Leipzig</b> & "friends"\nSecond line'
    await world.say("admin", "/group create news News")
    await world.say("admin", "/share news https://example.com/opening Opening")
    await approved(world, f"/propose newsroom {text} --item #1")

    told = await tick(world, job)

    status, attempts, url, _ = proposal(world)
    assert (status, attempts) == (ProposalStatus.PUBLISHED, 1)
    assert url == f"{PUBLIC}/public/newsroom.atom#entry-1"
    assert (
        f"alice: {en('proposal.told_published', proposal='P1', outlet='newsroom', url=url)}" in told
    )
    assert any(
        line.startswith("bob: @alice proposes:") and line.endswith(f"Published: {url}")
        for line in told
    )
    assert await tick(world, job) == []  # nothing more to do: published once

    feed = await feed_of(world, job.outlets)
    assert feed.bozo == 0, feed.bozo_exception
    assert feed.feed.title == "Newsroom"
    assert {"rel": "self", "href": f"{PUBLIC}/public/newsroom.atom"}.items() <= next(
        link for link in feed.feed.links if link["rel"] == "self"
    ).items()
    assert feed.feed.id.startswith("tag:pinwall.example,")
    [entry] = feed.entries
    assert entry.title == 'Grand opening <b>Leipzig</b> & "friends"'
    assert entry.content[0].value == text
    assert entry.link == "https://example.com/opening"
    assert entry.id.endswith(":newsroom/entry/1")
    metrics = world.hub.metrics.render().decode()
    assert 'pinwall_publish_outcomes_total{outcome="published",outlet="newsroom"} 1.0' in metrics
    assert 'pinwall_approval_turnaround_seconds_count{outcome="approved"} 1.0' in metrics


def test_newsroom_ids_stay_when_only_the_local_address_gives_links() -> None:
    """Without PINWALL_PUBLIC_URL the links point at the local HTTP address, but the ids
    do not come from it: a changed port must not make readers see every entry anew."""
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    entry = NewsroomEntry(id=1, outlet="newsroom", key="k", text="Hello", published_at=now)
    local = render_feed(NEWSROOM_SPEC, [entry], None, now=now, links_url="http://127.0.0.1:8080")
    other = render_feed(NEWSROOM_SPEC, [entry], None, now=now, links_url="http://127.0.0.1:9090")
    feeds = [feedparser.parse(body) for body in (local, other)]
    assert [f.entries[0].id for f in feeds] == [
        "tag:pinwall.invalid,2026-11-27:newsroom/entry/1"
    ] * 2
    assert feeds[0].entries[0].link == "http://127.0.0.1:8080/public/newsroom.atom#entry-1"


async def test_the_webhook_posts_signed_json_and_reports_the_link(
    world: World, tmp_path: Path, receiver: Receiver
) -> None:
    job = job_for(world, tmp_path, webhook_spec(receiver.url))
    await approved(world, "/propose agency Hello agency")

    told = await tick(world, job)

    assert receiver.refused == 0
    [post] = receiver.posts
    assert post["text"] == "Hello agency"
    assert post["proposal"] == "P1"
    assert post["idempotency_key"] == "pinwall-p1-r1"
    assert proposal(world)[:3] == (ProposalStatus.PUBLISHED, 1, "https://agency.example/1")
    assert "alice: Your proposal P1 is published on agency: https://agency.example/1" in told


async def test_a_wrong_secret_is_refused_by_the_receiver_for_good(
    world: World, tmp_path: Path, receiver: Receiver
) -> None:
    job = job_for(world, tmp_path, replace(webhook_spec(receiver.url), token="wrong"))
    await approved(world, "/propose agency Forged")
    told = await tick(world, job)
    assert receiver.refused == 1
    assert receiver.posts == []
    assert proposal(world)[0] == ProposalStatus.FAILED
    assert any(line.startswith("alice: Your proposal P1 could not be published") for line in told)


async def test_a_transient_error_is_retried_with_backoff(
    world: World, tmp_path: Path, receiver: Receiver
) -> None:
    job = job_for(world, tmp_path, webhook_spec(receiver.url))
    receiver.script.extend([503, 200])
    await approved(world, "/propose agency Try again")

    assert await tick(world, job) == []  # nobody is bothered with a retry
    status, attempts, _, error = proposal(world)
    assert (status, attempts, error) == (ProposalStatus.APPROVED, 1, "the webhook answered 503")
    await tick(world, job)
    assert len(receiver.posts) == 1  # not due yet: 30 s backoff
    world.clock.advance(31)
    await tick(world, job)
    assert len(receiver.posts) == 2
    assert proposal(world)[:2] == (ProposalStatus.PUBLISHED, 2)


async def test_an_uncertain_outcome_is_flagged_for_admins_and_never_repeated(
    world: World, tmp_path: Path, receiver: Receiver
) -> None:
    job = job_for(world, tmp_path, webhook_spec(receiver.url))
    receiver.script.append("slow")
    await approved(world, "/propose agency Maybe")

    told = await tick(world, job)

    assert proposal(world)[0] == ProposalStatus.UNCERTAIN
    assert any(line.startswith("admin: Please check agency: publishing P1") for line in told)
    assert any(line.startswith("alice: Publishing your proposal P1 on agency may") for line in told)
    pending = (await world.say("admin", "/pending")).text("admin")
    assert "P1 → agency · @alice · uncertain, an admin checks" in pending
    world.clock.advance(hours=2)
    await tick(world, job)
    assert len(receiver.posts) == 1  # never repeated by itself

    # The admin looked: not there. Publishing again is their decision.
    out = await world.say("admin", "/approve P1")
    assert out.text("admin") == en("proposal.admin_retry", proposal="P1", outlet="agency")
    await tick(world, job)
    assert len(receiver.posts) == 2
    assert proposal(world)[0] == ProposalStatus.PUBLISHED


async def test_a_crash_between_publishing_and_recording_posts_no_second_time(
    world: World, tmp_path: Path, receiver: Receiver
) -> None:
    job = job_for(world, tmp_path, webhook_spec(receiver.url))
    await world.say("carol", "/whoami")
    await approved(world, "/propose agency Once only")
    await world.say("alice", "/propose newsroom Once only, too")
    await world.say("bob", "/approve P2")

    # The attempt is recorded and committed, the outlets are called, then Pinwall dies.
    claimed = await world.hub.call(job._claim, world.clock.now())
    assert [c.proposal_id for c in claimed] == [1, 2]
    for c in claimed:
        await job.publisher(c.spec).publish(c.publication)
    assert proposal(world)[0] == ProposalStatus.PUBLISHING
    assert len(receiver.posts) == 1

    restarted = job_for(world, tmp_path, webhook_spec(receiver.url))
    await tick(world, restarted)
    assert proposal(world)[0] == ProposalStatus.PUBLISHING  # it may still be running
    world.clock.advance(minutes=5)
    told = await tick(world, restarted)
    # The webhook cannot tell a repeat: uncertain, for an admin, never posted again.
    assert proposal(world, 1)[0] == ProposalStatus.UNCERTAIN
    assert len(receiver.posts) == 1
    assert any(line.startswith("admin: Please check agency") for line in told)
    # The newsroom takes the idempotency key: the same attempt again finds its entry.
    assert proposal(world, 2)[:2] == (ProposalStatus.PUBLISHED, 2)
    assert len((await feed_of(world, restarted.outlets)).entries) == 1


async def test_pending_proposals_expire_after_seven_days_or_at_their_publish_time(
    world: World, tmp_path: Path
) -> None:
    job = job_for(world, tmp_path)
    for name in ("bob", "alice"):
        await world.say(name, "/whoami")
    await world.say("admin", "/role bob gatekeeper")
    await world.say("alice", "/propose newsroom Slow decision")
    await world.say("alice", "/propose newsroom Timed --at 12:00")
    card = [s for s in world.adapter.to("bob") if s.message.meta.get("proposal") == 1][-1]

    world.clock.advance(hours=3)  # 11:00 local: the timed one's time has passed
    told = await tick(world, job)
    assert proposal(world, 2)[0] == ProposalStatus.EXPIRED
    assert proposal(world, 1)[0] == ProposalStatus.PENDING
    assert f"alice: {en('proposal.told_expired', proposal='P2', outlet='newsroom')}" in told

    world.clock.advance(days=7)
    told = await tick(world, job)
    assert proposal(world, 1)[0] == ProposalStatus.EXPIRED
    assert "bob: @alice proposes:\n> Slow decision\nExpired without a decision." in told
    late = await world.press("bob", card, 0)
    assert late.text("bob") == en("error.proposal_decided", proposal="P1", status="expired")


async def test_two_simultaneous_approvals_publish_once(
    world: World, tmp_path: Path, receiver: Receiver
) -> None:
    job = job_for(world, tmp_path, webhook_spec(receiver.url))
    for name in ("bob", "carol", "alice"):
        await world.say(name, "/whoami")
    await world.say("admin", "/role bob gatekeeper")
    await world.say("admin", "/role carol gatekeeper")
    await world.say("alice", "/propose agency Both at once")
    now = world.clock.now()
    await asyncio.gather(
        world.hub.submit(world.adapter.event("bob", "/approve P1", now)),
        world.hub.submit(world.adapter.event("carol", "/approve P1", now)),
    )
    await asyncio.gather(tick(world, job), tick(world, job))
    await tick(world, job)
    assert len(receiver.posts) == 1
    assert proposal(world)[0] == ProposalStatus.PUBLISHED


def test_outlet_settings_name_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINWALL_OUTLET_AGENCY_TOKEN", raising=False)
    cases = {
        "PINWALL_OUTLETS_AGENCY_KIND": {"agency": {"kind": "fax"}},
        "PINWALL_OUTLET_AGENCY_TOKEN": {"agency": {"kind": "webhook", "url": "https://x"}},
        "PINWALL_OUTLETS_BAD-NAME": {"bad-name": {"kind": "webhook"}},
        "PINWALL_OUTLETS_AGENCY_QUORUM": {"agency": {"kind": "newsroom", "quorum": 0}},
        "PINWALL_OUTLETS_NEWSROOM_KIND": {"newsroom": {"kind": "webhook"}},
    }
    for setting, outlets in cases.items():
        with pytest.raises(ConfigError) as err:
            load_settings(outlets=outlets)
        assert str(err.value).startswith(f"{setting}: "), str(err.value)
    monkeypatch.setenv("PINWALL_OUTLET_AGENCY_TOKEN", SECRET)
    settings = load_settings(
        outlets={"agency": {"kind": "webhook", "url": "https://x", "quorum": 2}}
    )
    specs = outlet_settings(settings).outlets
    assert [(s.name, s.kind, s.quorum) for s in specs] == [
        ("newsroom", "newsroom", 1),
        ("agency", "webhook", 2),
    ]
    assert specs[1].token == SECRET
    assert SECRET not in repr(specs[1])
    assert settings.redacted()["outlet_tokens"] == {"agency": "********"}
    assert SECRET not in json.dumps(settings.redacted())


def test_a_kind_without_its_module_stops_the_start(tmp_path: Path) -> None:
    context = OutletContext(db=None, public_url=None, data_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_X_KIND"):
        create_publisher(OutletSpec("x", "carrier_pigeon"), context)
    assert create_publisher(NEWSROOM_SPEC, context).name == "newsroom"


async def test_a_proposal_past_its_expiry_cannot_be_approved_before_the_tick(
    world: World,
) -> None:
    await world.say("bob", "/whoami")
    await world.say("admin", "/role bob gatekeeper")
    await world.say("alice", "/propose newsroom Late")
    world.clock.advance(days=8)
    out = await world.say("bob", "/approve P1")
    assert out.text("bob") == en("error.proposal_decided", proposal="P1", status="expired")
