"""End to end, as a new user would try it: a partner redeems an invite to `franchise` on the
console, sees only that group, finds nothing of `marketing` (items or search), and the
operator exports and then erases what Pinwall stored about them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.bot.conversation import en
from tests.e2e.test_console import lines_to, pinwall

SETUP = """\
/group create marketing Marketing
/group create franchise Franchise --externals
/share marketing Confidential pricing strategy for next year
/share franchise Welcome, franchisees: the new pricing sheet is here
/invite partner franchise
"""


def test_a_partner_sees_only_their_group_and_can_be_exported_and_forgotten(
    tmp_path: Path,
) -> None:
    setup = pinwall(tmp_path, SETUP)
    assert setup.returncode == 0, setup.stderr
    code = re.search(r"redeem ([A-Za-z0-9]{10})", setup.stdout)
    assert code, setup.stdout

    partner = pinwall(
        tmp_path,
        f"/as paul\n/redeem {code.group(1)}\n/groups\n/items marketing\n/items franchise\n"
        "/search strategy\n/search pricing\n/comment #2 Thanks, printed it for the shop\n",
    )
    assert partner.returncode == 0, partner.stderr
    said = lines_to(partner.stdout, "paul")
    assert len(said) == 7, partner.stdout
    redeemed, groups, marketing, franchise, strategy, pricing, _comment = said
    assert "Franchise" in redeemed
    assert "Franchise" in groups
    assert "Marketing" not in groups
    assert marketing.removeprefix("[paul] ") == en("error.group_not_found", group="marketing")
    assert "#2" in franchise
    assert "#1" not in franchise
    assert strategy.removeprefix("[paul] ") == en("search.none", query="strategy")
    assert "#2" in pricing
    assert "#1" not in pricing

    export = pinwall(tmp_path, "", "privacy", "export", "paul", "-o", "paul.json")
    assert export.returncode == 0, export.stderr
    data = json.loads((tmp_path / "paul.json").read_text())
    assert data["person"]["handle"] == "paul"
    assert data["person"]["role"] == "partner"
    assert [c["text"] for c in data["comments"]] == ["Thanks, printed it for the shop"]
    assert [a["platform"] for a in data["accounts"]] == ["console"]

    forget = pinwall(tmp_path, "", "privacy", "forget", "paul", "--yes")
    assert forget.returncode == 0, forget.stderr
    assert "paul forgotten" in forget.stdout
    again = pinwall(tmp_path, "", "privacy", "export", "paul")
    assert again.returncode == 1
    assert "no person 'paul'" in again.stderr
    people = pinwall(tmp_path, "", "people", "list", "--all", "--json")
    handles = [p["handle"] for p in json.loads(people.stdout)]
    assert "paul" not in handles
    assert any(h.startswith("former-") for h in handles)
