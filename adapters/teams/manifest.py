"""The Teams app package (`pinwall teams manifest --out pinwall-teams.zip`): manifest.json
(schema v1.19) with the bot, its command list, the message extension "Share to Pinwall
group", the resource-specific permissions to read the messages of a bridged channel or
chat, and a German translation (de.json); the two icons are drawn here as PNGs (color
192x192, outline 32x32 white on transparent). Built from the settings alone: upload the
zip in Teams (Apps → Manage your apps → Upload an app) or the Developer Portal."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from typing import Any
from urllib.parse import urlsplit

from adapters.teams.inbound import SHARE_COMMAND
from adapters.teams.settings import TeamsSettings

SCHEMA = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.19/MicrosoftTeams.schema.json"
LOCALIZATION_SCHEMA = (
    "https://developer.microsoft.com/en-us/json-schemas/teams/v1.19/"
    "MicrosoftTeams.Localization.schema.json"
)
ACCENT = (0x2B, 0x57, 0x9A)  # Pinwall blue
COMMANDS = ("help", "groups", "join", "share", "items", "notify", "settings", "link")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "short": "Pinwall",
        "full": "Pinwall: {company}'s internal social network",
        "description.short": "Share links and news with your groups, right here in Teams.",
        "description.full": (
            "Pinwall is {company}'s internal social network inside the messengers people "
            "already use. Share links and files with your groups, get digests, vote in "
            "polls, and approve what goes out — in Teams, Slack, Telegram, Matrix or mail."
        ),
        "share.title": "Share to Pinwall group",
        "share.description": "Share this message with one of your Pinwall groups",
        "share.note": "Note (optional)",
        "command.help": "What Pinwall can do",
        "command.groups": "Your groups and all others",
        "command.join": "Join a group: join marketing",
        "command.share": "Share a link: share marketing https://…",
        "command.items": "The newest posts of a group",
        "command.notify": "How often you hear of a group",
        "command.settings": "Your language, digests and quiet hours",
        "command.link": "Link this account with your other messengers",
    },
    "de": {
        "short": "Pinwall",
        "full": "Pinwall: das interne soziale Netzwerk von {company}",
        "description.short": "Teile Links und Neuigkeiten mit deinen Gruppen, direkt in Teams.",
        "description.full": (
            "Pinwall ist das interne soziale Netzwerk von {company} in den Messengern, die "
            "alle schon nutzen. Teile Links und Dateien mit deinen Gruppen, bekomme "
            "Zusammenfassungen, stimme ab und gib frei, was veröffentlicht wird — in Teams, "
            "Slack, Telegram, Matrix oder per Mail."
        ),
        "share.title": "In Pinwall-Gruppe teilen",
        "share.description": "Diese Nachricht mit einer deiner Pinwall-Gruppen teilen",
        "share.note": "Notiz (optional)",
        "command.help": "Was Pinwall kann",
        "command.groups": "Deine Gruppen und alle anderen",
        "command.join": "Einer Gruppe beitreten: join marketing",
        "command.share": "Einen Link teilen: share marketing https://…",
        "command.items": "Die neuesten Beiträge einer Gruppe",
        "command.notify": "Wie oft du von einer Gruppe hörst",
        "command.settings": "Sprache, Zusammenfassungen und Ruhezeiten",
        "command.link": "Dieses Konto mit deinen anderen Messengern verbinden",
    },
}


def _t(language: str, key: str, company: str) -> str:
    return TEXTS[language][key].replace("{company}", company)


def manifest(settings: TeamsSettings, version: str = "1.0.0") -> dict[str, Any]:
    if not settings.teams_app_id:
        raise ValueError("PINWALL_TEAMS_APP_ID is not set: the manifest names the bot by it")
    company = settings.company_name or "your company"
    site = settings.public_url or "https://github.com/pinwall"
    if not site.startswith("https://"):
        site = "https://" + site.split("://", 1)[-1]
    en = "en"
    commands = [
        {"title": name, "description": _t(en, f"command.{name}", company)} for name in COMMANDS
    ]
    host = urlsplit(site).hostname
    return {
        "$schema": SCHEMA,
        "manifestVersion": "1.19",
        "version": version,
        "id": settings.teams_app_id,
        "developer": {
            "name": company if settings.company_name else "Pinwall",
            "websiteUrl": site,
            "privacyUrl": site,
            "termsOfUseUrl": site,
        },
        "name": {"short": _t(en, "short", company), "full": _t(en, "full", company)[:100]},
        "description": {
            "short": _t(en, "description.short", company)[:80],
            "full": _t(en, "description.full", company)[:4000],
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#" + "".join(f"{c:02X}" for c in ACCENT),
        "localizationInfo": {
            "defaultLanguageTag": "en-us",
            "additionalLanguages": [{"languageTag": "de-de", "file": "de.json"}],
        },
        "bots": [
            {
                "botId": settings.teams_app_id,
                "scopes": ["personal", "team", "groupChat"],
                "supportsFiles": True,
                "isNotificationOnly": False,
                "commandLists": [
                    {"scopes": ["personal", "team", "groupChat"], "commands": commands}
                ],
            }
        ],
        "composeExtensions": [
            {
                "botId": settings.teams_app_id,
                "commands": [
                    {
                        "id": SHARE_COMMAND,
                        "type": "action",
                        "context": ["message"],
                        "title": _t(en, "share.title", company),
                        "description": _t(en, "share.description", company),
                        "fetchTask": False,
                        "parameters": [
                            {
                                "name": "note",
                                "title": _t(en, "share.note", company),
                                "inputType": "textarea",
                            }
                        ],
                    }
                ],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        # Read every message of a channel or chat the app is in (not only @mentions):
        # a bridged channel's messages are posts of its group.
        "authorization": {
            "permissions": {
                "resourceSpecific": [
                    {"name": "ChannelMessage.Read.Group", "type": "Application"},
                    {"name": "ChatMessage.Read.Chat", "type": "Application"},
                ]
            }
        },
        "validDomains": [host] if host else [],
    }


def german(settings: TeamsSettings) -> dict[str, Any]:
    company = settings.company_name or "deiner Firma"
    de = "de"
    out: dict[str, Any] = {
        "$schema": LOCALIZATION_SCHEMA,
        "name.short": _t(de, "short", company),
        "name.full": _t(de, "full", company)[:100],
        "description.short": _t(de, "description.short", company)[:80],
        "description.full": _t(de, "description.full", company)[:4000],
        "composeExtensions[0].commands[0].title": _t(de, "share.title", company),
        "composeExtensions[0].commands[0].description": _t(de, "share.description", company),
        "composeExtensions[0].commands[0].parameters[0].title": _t(de, "share.note", company),
    }
    for i, name in enumerate(COMMANDS):
        out[f"bots[0].commandLists[0].commands[{i}].description"] = _t(
            de, f"command.{name}", company
        )
    return out


# --- icons ---------------------------------------------------------------------------


def png(width: int, height: int, pixel: Any) -> bytes:
    """An RGBA PNG of `pixel(x, y) -> (r, g, b, a)`, written with zlib and struct."""
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _pin(x: float, y: float) -> bool:
    """A pushpin on a unit square: a round head and a needle below it."""
    head = (x - 0.5) ** 2 + (y - 0.36) ** 2 <= 0.22**2
    needle = abs(x - 0.5) <= 0.045 and 0.5 <= y <= 0.86
    return head or needle


def color_icon() -> bytes:
    size = 192
    return png(
        size,
        size,
        lambda x, y: (255, 255, 255, 255) if _pin(x / size, y / size) else (*ACCENT, 255),
    )


def outline_icon() -> bytes:
    size = 32  # white on transparent, as Teams requires
    return png(
        size,
        size,
        lambda x, y: (255, 255, 255, 255) if _pin(x / size, y / size) else (0, 0, 0, 0),
    )


def package(settings: TeamsSettings, version: str = "1.0.0") -> bytes:
    """The zip Teams takes: manifest.json, de.json and the two icons at its top level."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest(settings, version), indent=2))
        z.writestr("de.json", json.dumps(german(settings), indent=2, ensure_ascii=False))
        z.writestr("color.png", color_icon())
        z.writestr("outline.png", outline_icon())
    return out.getvalue()
