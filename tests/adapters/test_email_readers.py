"""What a mail reader reads: every text that names a command says how to send it by
mail ("a reply with the word help" / "eine Antwort mit dem Wort help"), never a
messenger's prefix nor a bare command word — help, its listings and details, an unknown
command, a usage error, a refusal — over real SMTP (a mail-only colleague, German)."""

from __future__ import annotations

import re
from pathlib import Path

from store.models import NotifyMode
from tests.adapters.email_world import DOMAIN, mail_world, plain
from tests.adapters.test_email_choices import _mail
from tests.adapters.test_email_sending import mail_only

CARLA = "carla.weber@firma.test"
WORDS = "eine Antwort mit dem Wort "
# a line that begins with a command as typed on a messenger, or a "?"/"/" prefix
RAW = re.compile(r"(^|\n)\s*(•\s*)?[/?](help|hilfe|beitreten|join|role)\b|\s/(help|join)\b")


async def test_a_mail_reader_is_told_how_to_send_a_command_by_mail(tmp_path: Path) -> None:
    pinwall = f"pinwall@{DOMAIN}"
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        mail_only(world, CARLA, NotifyMode.INSTANT)  # German, her only account a mail address
        said = {}
        for n, line in enumerate(
            [
                "hilfe",
                "hilfe alle",
                "hilfe beitreten",
                "frobnizieren",
                "benachrichtigung vertrieb oft",
                "freigeben P1",
            ],
            1,
        ):
            await world.send(_mail(CARLA, pinwall, line, n), sender=CARLA, to=[pinwall])
            said[line] = plain(world.sink.to(CARLA)[-1])
        for line, text in said.items():
            assert not RAW.search(text), f"{line}: {text}"

        assert f"Mehr zu einem Befehl: {WORDS}hilfe <befehl>" in said["hilfe"]
        assert f"• {WORDS}beitreten <gruppe>" in said["hilfe alle"]
        assert f"Beispiel: {WORDS}beitreten vertrieb" in said["hilfe beitreten"]
        assert f"Schick {WORDS}hilfe, um alle Befehle zu sehen." in said["frobnizieren"]
        assert f"{WORDS}benachrichtigung <gruppe>" in said["benachrichtigung vertrieb oft"]
        assert f"ernennt jemanden, so: {WORDS}rolle <person> gatekeeper" in said["freigeben P1"]

        # in English the same
        await world.send(
            _mail(CARLA, pinwall, "settings language en", 7), sender=CARLA, to=[pinwall]
        )
        await world.send(_mail(CARLA, pinwall, "help join", 8), sender=CARLA, to=[pinwall])
        text = plain(world.sink.to(CARLA)[-1])
        assert not RAW.search(text), text
        assert "a reply with the word join <group>" in text.splitlines()
        assert "Example: a reply with the word join vertrieb" in text
