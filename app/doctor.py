"""`pinwall doctor`: checks what a running Pinwall would need — the settings, the database
and its schema, each configured messenger as the platform sees it (token, webhook,
permissions), the fetch allow-list — and prints for each problem what is wrong and the
one thing to do about it. Exit code 1 when anything is wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from app.messengers import MESSENGERS
from bot.config import Settings
from bot.messenger import Messenger, Problem

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
        reachable = db.problem()
        if reachable is not None:
            problems += _report(
                "database",
                [Problem(f"not reachable ({reachable})", "check PINWALL_DATABASE_URL")],
            )
        else:
            schema = db.schema_problem()
            fix = "run pinwall db upgrade (pinwall run does it at start)"
            problems += _report(
                "database",
                [Problem(schema, fix)] if schema else [],
                ok=f"ok ({db.backend}, schema current)",
            )
    finally:
        db.dispose()
    for messenger in MESSENGERS:
        if messenger.local or messenger.check is None or not messenger.is_configured(settings):
            continue
        found = asyncio.run(_messenger(messenger, settings))
        problems += _report(messenger.name, found)
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
