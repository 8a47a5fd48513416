"""`pinwall teams manifest --out pinwall-teams.zip`: the Teams app package, built from
the settings (adapters/teams/manifest.py), ready to upload in Teams."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bot.config import Settings


def add_parsers(sub: Any) -> None:
    t = sub.add_parser("teams", help="Microsoft Teams: the app package to upload")
    t_sub = t.add_subparsers(dest="teams_command", metavar="ACTION", required=True)
    m = t_sub.add_parser("manifest", help="write the Teams app package (manifest and icons)")
    m.add_argument("--out", type=Path, default=Path("pinwall-teams.zip"), help="the zip to write")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.teams.manifest import package
    from adapters.teams.settings import TeamsSettings

    assert isinstance(settings, TeamsSettings)
    if not settings.teams_app_id:
        print(
            "pinwall teams manifest: set PINWALL_TEAMS_APP_ID (the bot's Microsoft App ID) "
            "first; the manifest names the bot by it",
            file=sys.stderr,
        )
        return 2
    release = ".".join(version("pinwall").split(".")[:3])
    args.out.write_bytes(package(settings, release if release.count(".") == 2 else "1.0.0"))
    print(f"Teams app package written to {args.out}: upload it in Teams (Apps → Manage your apps)")
    return 0
