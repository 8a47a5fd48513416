"""Teams' own features over real HTTP against FakeTeams: the message extension "Share to
Pinwall group", files shared in Teams (and hostile download URLs), real mentions, the app
package from `pinwall teams manifest`, and `pinwall doctor`'s check of the credentials."""

from __future__ import annotations

import json
import logging
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from adapters.teams import files
from adapters.teams.render import activity
from app.cli import main
from bot.i18n import translator_for
from bot.message import Button, Message
from store.db import Database
from store.models import ItemFile
from tests.adapters.teams_world import (
    ALICE,
    MARKET,
    PUBLIC_URL,
    TEAMS_WORLD,
    TeamsPinwall,
    personal,
)
from tests.fakes.teams import APP_ID, PASSWORD, TENANT, FakeTeams

FILE_INFO = "application/vnd.microsoft.teams.file.download.info"

pytest_plugins = [TEAMS_WORLD]


@pytest.fixture
def teams_options() -> dict[str, Any]:
    """No admin; files over a KiB are too large."""
    return {"max_bytes": 1024}


async def test_share_to_pinwall_on_a_message_asks_which_group_in_personal_chat(
    tp: TeamsPinwall, teams: FakeTeams
) -> None:
    alice = tp.user(ALICE, "Alice")
    await tp.group_joined("marketing", "Marketing", alice, reader="carla")
    invoke = alice.activity(
        "invoke",
        alice.channel("19:other@thread.tacv2"),
        name="composeExtension/submitAction",
        value={
            "commandId": "shareToPinwall",
            "commandContext": "message",
            "data": {"note": "Für die Messeplanung"},
            "messagePayload": {
                "id": "1700000000001",
                "body": {
                    "contentType": "html",
                    "content": "<p>Messe-Termine https://example.com/messe</p>",
                },
            },
        },
    )
    answer = await alice.post(invoke)
    assert (answer.status_code, answer.json()) == (200, {})
    question = await tp.said_to(personal(ALICE), "In welcher Gruppe")
    assert (await alice.presses(question, "Marketing")).status_code == 200
    post = await tp.printed_eventually("carla", "Messe-Termine")
    assert "via Teams in Marketing" in post
    assert "Für die Messeplanung" in post


async def test_a_file_shared_in_teams_is_stored_and_hostile_or_large_ones_are_refused(
    tp: TeamsPinwall, teams: FakeTeams, caplog: pytest.LogCaptureFixture
) -> None:
    alice = tp.user(ALICE, "Alice")
    await alice.says("group create marketing Marketing")  # she moderates it
    await alice.mentions(MARKET, "bridge marketing")
    await tp.said_to(MARKET, "verbunden")
    teams.files["flyer.pdf"] = b"%PDF-1.4 the flyer"
    teams.files["huge.bin"] = b"0" * 4096  # over the 1 KiB the blob store takes here

    def shared(name: str, url: str) -> dict[str, object]:
        return {
            "contentType": FILE_INFO,
            "name": name,
            "contentUrl": url,
            "content": {"downloadUrl": url, "uniqueId": name, "fileType": name.rsplit(".")[-1]},
        }

    caplog.set_level(logging.WARNING, logger="adapters.teams")
    await alice.says(
        "share marketing Flyer der Konkurrenz",
        attachments=[shared("flyer.pdf", teams.url + "/files/flyer.pdf")],
    )
    await tp.said_to(personal(ALICE), "Geteilt als #1")
    with tp.db.uow() as uow:
        [blob_id] = uow.session.scalars(select(ItemFile.blob_id)).all()
    assert tp.hub.blobs is not None
    assert tp.hub.blobs.read(blob_id) == b"%PDF-1.4 the flyer"
    # In the bridged channel the post links the file to Pinwall's signed download.
    relayed = await tp.said_to(MARKET, "Flyer der Konkurrenz")
    [link] = re.findall(r"📎 \[flyer\.pdf\]\((https://[^)]+)\)", relayed.text)
    assert link.startswith(PUBLIC_URL + f"/files/{blob_id}/flyer.pdf?exp=")
    async with httpx.AsyncClient() as http:
        served = await http.get(tp.endpoint.replace("/teams/messages", link[len(PUBLIC_URL) :]))
    assert served.content == b"%PDF-1.4 the flyer"
    # A download URL inside the company's network, and a file over the limit: refused.
    await alice.says(
        "share marketing Geheim",
        attachments=[shared("meta.txt", "http://169.254.169.254/latest/meta-data")],
    )
    await alice.says(
        "share marketing Riesig", attachments=[shared("huge.bin", teams.url + "/files/huge.bin")]
    )
    await tp.said_to(personal(ALICE), "huge.bin")
    assert any("refused to fetch file meta.txt" in r.getMessage() for r in caplog.records)
    with tp.db.uow() as uow:
        assert len(uow.session.scalars(select(ItemFile.blob_id)).all()) == 1


async def test_a_large_file_goes_to_the_upload_session_in_ranges(
    teams: FakeTeams, tmp_path: Path
) -> None:
    """OneDrive's upload session takes under 60 MiB a request, in multiples of 320 KiB but
    the last: a file over one range goes in several PUTs (files.UPLOAD_CHUNK is 10 MiB;
    here 320 KiB, so that a test need not move 60 MiB), the fake checking each range."""
    unit = files.RANGE_UNIT
    source = tmp_path / "big.bin"
    data = bytes(range(256)) * ((2 * unit + 1000) // 256 + 1)
    source.write_bytes(data)
    session = f"{teams.url}/upload/drive-item-big.bin"
    async with httpx.AsyncClient() as http:
        assert await files.upload(http, session, source, {"127.0.0.1"}, chunk=unit)
    size = len(data)
    assert teams.upload_ranges["drive-item-big.bin"] == [
        f"bytes 0-{unit - 1}/{size}",
        f"bytes {unit}-{2 * unit - 1}/{size}",
        f"bytes {2 * unit}-{size - 1}/{size}",
    ]
    assert teams.uploads["drive-item-big.bin"] == data
    # A file within one range: one PUT, as before.
    small = tmp_path / "small.csv"
    small.write_bytes(b"handle,confirmed\n")
    async with httpx.AsyncClient() as http:
        assert await files.upload(http, f"{teams.url}/upload/s", small, {"127.0.0.1"})
    assert teams.upload_ranges["s"] == ["bytes 0-16/17"]
    assert files.UPLOAD_CHUNK % unit == 0
    assert files.UPLOAD_CHUNK < 60 * 1024 * 1024
    # The fake holds an uploader to it: a range before the last off the 320 KiB grid is
    # refused (and would fail the test).
    async with httpx.AsyncClient() as http:
        off_grid = {"Content-Range": "bytes 0-999/5000"}
        bad = await http.put(f"{teams.url}/upload/bad", content=b"x" * 1000, headers=off_grid)
    assert bad.status_code == 400
    assert teams.errors == ["upload bad: range 'bytes 0-999/5000' after 0 bytes"]
    teams.errors.clear()


def test_a_bridged_post_names_its_teams_author_with_a_real_mention() -> None:
    people = {
        "alice": {"name": "Alice Meier", "accounts": {"teams": ALICE}},
        "bob": {"name": "Bob", "accounts": {"slack": "U2BOB"}},
    }
    sent = activity(
        Message(
            text="@alice und @bob: **neu** _[Flyer](https://example.com/f)_",
            meta={"mentions": people},
        )
    )
    assert sent["text"].startswith("<at>Alice Meier</at> und Bob: **neu**")
    assert sent["entities"] == [
        {
            "type": "mention",
            "text": "<at>Alice Meier</at>",
            "mentioned": {"id": ALICE, "name": "Alice Meier"},
        }
    ]


def _pixels(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4 : idat])[0]
    rows = zlib.decompress(data[idat + 4 : idat + 4 + size])
    assert len(rows) == height * (1 + 4 * width)
    return width, height


def test_pinwall_teams_manifest_writes_the_app_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PINWALL_TEAMS_APP_ID", APP_ID)
    monkeypatch.setenv("PINWALL_COMPANY_NAME", "Muster GmbH")
    monkeypatch.setenv("PINWALL_PUBLIC_URL", "https://pinwall.muster.de")
    out = tmp_path / "pinwall-teams.zip"
    assert main(["teams", "manifest", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["color.png", "de.json", "manifest.json", "outline.png"]
        manifest = json.loads(z.read("manifest.json"))
        german = json.loads(z.read("de.json"))
        assert _pixels(z.read("color.png")) == (192, 192)
        assert _pixels(z.read("outline.png")) == (32, 32)
    assert manifest["manifestVersion"] == "1.19"
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == ["pinwall.muster.de"]
    [command] = manifest["composeExtensions"][0]["commands"]
    assert (command["id"], command["type"], command["context"]) == (
        "shareToPinwall",
        "action",
        ["message"],
    )
    assert german["composeExtensions[0].commands[0].title"] == "In Pinwall-Gruppe teilen"
    assert "Muster GmbH" in german["name.full"]
    # The texts are the catalogs' (bot/i18n/*.teams.toml), in both languages.
    join = translator_for("de").raw("teams.manifest.command.join")
    assert german["bots[0].commandLists[0].commands[2].description"] == join
    [english_join] = [
        c for c in manifest["bots"][0]["commandLists"][0]["commands"] if c["title"] == "join"
    ]
    assert english_join["description"] == translator_for("en").raw("teams.manifest.command.join")
    assert manifest["name"]["short"] == "Pinwall"
    monkeypatch.delenv("PINWALL_TEAMS_APP_ID")
    assert main(["teams", "manifest", "--out", str(out)]) == 2
    assert "PINWALL_TEAMS_APP_ID" in capsys.readouterr().err


def test_doctor_checks_the_teams_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("TELEGRAM_TOKEN", "SLACK_BOT_TOKEN", "MATRIX_HOMESERVER"):
        monkeypatch.delenv(f"PINWALL_{name}", raising=False)
    monkeypatch.setenv("PINWALL_DATABASE_URL", f"sqlite:///{tmp_path / 'pinwall.db'}")
    monkeypatch.setenv("PINWALL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PINWALL_CONSOLE", "off")
    Database(f"sqlite:///{tmp_path / 'pinwall.db'}").upgrade()
    with FakeTeams() as fake:
        monkeypatch.setenv("PINWALL_TEAMS_APP_ID", APP_ID)
        monkeypatch.setenv("PINWALL_TEAMS_APP_PASSWORD", PASSWORD)
        monkeypatch.setenv("PINWALL_TEAMS_TENANT_ID", TENANT)
        monkeypatch.setenv("PINWALL_TEAMS_OPENID_URL", fake.openid_url)
        monkeypatch.setenv("PINWALL_TEAMS_TOKEN_URL", fake.token_url)
        assert main(["doctor"]) == 0
        assert "teams: ok" in capsys.readouterr().out.splitlines()
        monkeypatch.setenv("PINWALL_TEAMS_APP_PASSWORD", "an-old-secret")
        assert main(["doctor"]) == 1
        out = capsys.readouterr().out
        assert "Teams: the token endpoint refused the bot's credentials" in out
        assert "AADSTS7000215" in out
        assert "PINWALL_TEAMS_APP_PASSWORD" in out


def test_a_digest_card_has_each_posts_open_button_beside_its_line() -> None:
    digest = Message(
        title="Deine Zusammenfassung",
        text="**Marketing** (2)\n- #12 Neuer Katalog · @alice\n- #13 Flyer · @bob",
        buttons=(
            Button(label="#12 öffnen", action="item.open", value="12"),
            Button(label="#13 öffnen", action="item.open", value="13"),
            Button(label="Pause", action="digest.pause", value="daily"),
        ),
        meta={"digest": "daily"},
    )
    [attachment] = activity(digest)["attachments"]
    card = attachment["content"]
    rows = [b for b in card["body"] if b["type"] == "ColumnSet"]
    assert [r["columns"][1]["items"][0]["actions"][0]["data"]["pw"] for r in rows] == [
        "item.open|12",
        "item.open|13",
    ]
    assert rows[0]["columns"][0]["items"][0]["text"].startswith("- #12 Neuer Katalog")
    assert [a["data"]["pw"] for a in card["actions"]] == ["digest.pause|daily"]


def test_a_half_configured_teams_is_named_with_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PINWALL_TEAMS_APP_ID", APP_ID)
    monkeypatch.setenv("PINWALL_TEAMS_APP_PASSWORD", PASSWORD)
    monkeypatch.delenv("PINWALL_TEAMS_TENANT_ID", raising=False)
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert "PINWALL_TEAMS_TENANT_ID: missing" in err
    assert "PINWALL_TEAMS_APP_ID" not in err.split(":")[1]
