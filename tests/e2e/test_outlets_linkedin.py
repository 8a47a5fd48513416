"""End to end, the acceptance of issue 27 on the console: `pinwall run` with a LinkedIn
outlet (quorum 2) pointed at the fake LinkedIn API; alice proposes, two gatekeepers
approve, the post appears once on the fake with the organization as its author, alice
gets its URL, the admin is told ahead of time that the token lapses within a week, and
`pinwall doctor` warns about it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_console import lines_to, pinwall
from tests.fakes.linkedin import FakeLinkedIn

TOKEN = "AQV-page-admin-token"
ORG = "2414183"


@pytest.fixture
def fake() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as server:
        server.add_organization(ORG, "Acme GmbH")
        server.add_token(TOKEN, {f"urn:li:organization:{ORG}"})
        yield server


def test_acceptance_two_gatekeepers_publish_to_linkedin_once(
    fake: FakeLinkedIn, tmp_path: Path
) -> None:
    expires = date.today() + timedelta(days=5)
    (tmp_path / "pinwall.toml").write_text(
        "[outlets.linkedin]\n"
        'kind = "linkedin"\n'
        f'organization = "{ORG}"\n'
        f'base_url = "{fake.url}"\n'
        "quorum = 2\n"
        f"token_expires = {expires.isoformat()}\n"
    )
    env = {"PINWALL_OUTLET_LINKEDIN_TOKEN": TOKEN}
    script = "\n".join(
        [
            "/as bob",
            "/whoami",
            "/as carol",
            "/whoami",
            "/as admin",
            "/role bob gatekeeper",
            "/role carol gatekeeper",
            "/as alice",
            "/propose linkedin Our new store in Leipzig opens on Monday (free coffee!) #Leipzig",
            "/as bob",
            "/approve P1",
            "/as carol",
            "/approve P1",
            "/wait 7",  # the publish tick runs every 5 s
            "",
        ]
    )
    done = pinwall(tmp_path, script, **env)
    assert done.returncode == 0, done.stderr

    [post] = fake.posts
    assert post.body["author"] == f"urn:li:organization:{ORG}"
    assert post.shown == "Our new store in Leipzig opens on Monday (free coffee!) #Leipzig"
    assert fake.calls.count(("POST", "/rest/posts")) == 1
    url = f"https://www.linkedin.com/feed/update/{post.urn}"
    alice = lines_to(done.stdout, "alice")
    assert f"[alice] Your proposal P1 is published on linkedin: {url}" in alice
    bob = lines_to(done.stdout, "bob")
    card = next(m for m in bob if m.startswith("[bob] Proposal P1 for linkedin"))
    assert "Approvals: 0 of 2." in card
    assert any(m.endswith(f"Published: {url}") for m in bob)
    admin = lines_to(done.stdout, "admin")
    warned = [m for m in admin if "LinkedIn access token of channel linkedin" in m]
    assert len(warned) == 1
    assert f"stops working on {expires.isoformat()} (in 5 days)" in warned[0]

    doctor = pinwall(tmp_path, "", "doctor", **env)
    assert doctor.returncode == 1
    lines = doctor.stdout.splitlines()
    assert (
        f"outlet linkedin: PROBLEM the LinkedIn token of outlet linkedin expires on "
        f"{expires.isoformat()} (in 5 days)"
    ) in lines
    assert len(fake.posts) == 1  # doctor asks, it never posts
