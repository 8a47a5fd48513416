"""The operators' figures: /metrics has what deploy/'s Grafana dashboard and Prometheus
alert rules ask for, and the figures read from the store (failing feeds, waiting
proposals, adapters up) say what happened."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.http import create_app
from bot.metrics import Metrics
from store.db import Database
from store.models import Feed
from tests.harness import World

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\bpinwall_[a-z_]+")


def exposed() -> set[str]:
    """Every series name /metrics can show."""
    names: set[str] = set()
    for line in Metrics().render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            elif kind == "histogram":
                names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(name)
    return names


def test_the_dashboard_and_the_alerts_ask_only_for_figures_pinwall_has() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    assert all(r["alert"] and r["expr"] and r["annotations"]["summary"] for r in rules)
    asked = {n for e in [*exprs, *(r["expr"] for r in rules)] for n in NAME.findall(e)}
    assert len(asked) >= 10
    assert asked - exposed() == set()


@pytest.fixture
async def client(sqlite_db: Database) -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    world = World(sqlite_db)
    transport = httpx.ASGITransport(app=create_app(world.hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield world, http
    world.close()


def figure(text: str, name: str) -> float:
    found = re.search(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


async def test_metrics_show_waiting_proposals_and_failing_feeds(
    client: tuple[World, httpx.AsyncClient],
) -> None:
    world, http = client
    text = (await http.get("/metrics")).text
    assert figure(text, "pinwall_proposals_pending") == 0
    assert figure(text, "pinwall_feeds_failing") == 0
    assert 'pinwall_adapter_up{platform="memory"} 1.0' in text

    await world.script(
        ("admin", "/group create news News"),
        ("admin", "/role bob gatekeeper"),
        ("alice", "/propose newsroom Our new store opens on Monday!"),
    )
    with world.db.uow() as uow:
        group = uow.groups.by_slug("news")
        assert group is not None
        now = world.clock.now()
        uow.feeds.add(
            Feed(
                group_id=group.id,
                url="https://example.org/feed.xml",
                interval_seconds=3600,
                next_poll_at=now,
                failing_since=now,
                failures=3,
                last_error="http:503",
                created_at=now,
            )
        )
        uow.commit()
    world.clock.advance(26 * 3600)

    text = (await http.get("/metrics")).text
    assert figure(text, "pinwall_proposals_pending") == 1
    assert figure(text, "pinwall_proposal_oldest_waiting_seconds") == 26 * 3600
    assert figure(text, "pinwall_feeds_failing") == 1
    assert figure(text, "pinwall_feed_failing_seconds") == 26 * 3600
