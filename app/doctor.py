"""`pinwall doctor`: checks what a running Pinwall would need — the settings, the database
and its schema, each configured messenger as the platform sees it (token, webhook,
permissions), the fetch allow-list — and prints for each problem what is wrong and the
one thing to do about it. Exit code 1 when anything is wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from app.messengers import MESSENGERS
from bot.config import Settings, outlet_settings
from bot.errors import ConfigError
from bot.messenger import Messenger, Problem
from bot.outlets import OutletSpec
from jobs.outlets import create_publisher
from jobs.outlets.base import OutletContext
from store.db import Database

CHECK_TIMEOUT = 20.0


def _report(name: str, problems: Sequence[Problem], ok: str = "ok") -> int:
    if not problems:
        print(f"{name}: {ok}")
        return 0
    for problem in problems:
        print(f"{name}: PROBLEM {problem.what}")
        print(f"{' ' * len(name)}  → {problem.fix}")
    return len(problems)


async def _messenger(messenger: Messenger[Any, Any], settings: Settings) -> Sequence[Problem]:
    assert messenger.check is not None
    try:
        return await asyncio.wait_for(messenger.check(messenger.own(settings)), CHECK_TIMEOUT)
    except TimeoutError:
        return (
            Problem(
                f"{messenger.display_name} did not answer within {CHECK_TIMEOUT:.0f} s",
                "check that this machine reaches it (proxy, firewall)",
            ),
        )


async def _outlet(spec: OutletSpec, context: OutletContext) -> Sequence[Problem]:
    """The outlet's credentials as its network sees them, where it can be asked without
    publishing (a webhook can only be tried by a publication: not checked)."""
    try:
        publisher = create_publisher(spec, context)
    except ConfigError as exc:
        return (Problem(str(exc), "fix that setting in pinwall.toml or the environment"),)
    try:
        check = getattr(publisher, "check", None)
        if check is None:
            return ()
        found: Sequence[Problem] = await asyncio.wait_for(check(), CHECK_TIMEOUT)
        return found
    except TimeoutError:
        return (
            Problem(
                f"outlet {spec.name} did not answer within {CHECK_TIMEOUT:.0f} s",
                "check that this machine reaches it (proxy, firewall)",
            ),
        )
    finally:
        await publisher.aclose()


def _database(db: Database) -> int:
    reachable = db.problem()
    if reachable is not None:
        return _report(
            "database", [Problem(f"not reachable ({reachable})", "check PINWALL_DATABASE_URL")]
        )
    schema = db.schema_problem()
    fix = "run pinwall db upgrade (pinwall run does it at start)"
    return _report(
        "database",
        [Problem(schema, fix)] if schema else [],
        ok=f"ok ({db.backend}, schema current)",
    )


def doctor(settings: Settings) -> int:
    from adapters.console.settings import ConsoleSettings
    from app.wiring import open_database

    problems = 0
    console = settings.console if isinstance(settings, ConsoleSettings) else "off"
    print(
        f"settings: ok (console {console}, messengers: {', '.join(settings.messengers) or 'none'})"
    )
    db = open_database(settings, upgrade=False)
    try:
        problems += _database(db)
        for messenger in MESSENGERS:
            if messenger.local or messenger.check is None:
                continue
            if messenger.is_configured(settings):
                problems += _report(messenger.name, asyncio.run(_messenger(messenger, settings)))
        context = OutletContext(db=db, public_url=settings.public_url, data_dir=settings.data_dir)
        for spec in outlet_settings(settings).outlets:
            if spec.kind != "newsroom":
                problems += _report(f"outlet {spec.name}", asyncio.run(_outlet(spec, context)))
    finally:
        db.dispose()
    allowed = [e.strip() for e in settings.fetch_allowlist.split(",") if e.strip()]
    print(
        "fetch allow-list: "
        + (
            f"{', '.join(allowed)} may be fetched although internal"
            if allowed
            else "empty (links and feeds reach public addresses only)"
        )
    )
    return 1 if problems else 0
