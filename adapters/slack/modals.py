"""Slack's modals for sharing: "Share to Pinwall group" on a message opens a modal with
the person's groups as a select and the message's text to edit; its submission is the
`share` command. Building the view and reading the submission are pure; which groups
a person may post to comes from the core's policy (`postable_groups_of`, run on the
database thread).

Bad input never reaches the core: an empty or too long text, or one the command's
grammar refuses, is answered with `response_action: errors` under the field, in the
person's language, and nothing is written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.slack.render import (
    MAX_MODAL_TITLE,
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_OPTIONS,
    MAX_PLACEHOLDER,
    cut,
)
from bot import grammar
from bot.core import Core
from bot.errors import UserError
from bot.events import Conversation
from bot.i18n import Translator
from bot.markup import to_plain
from bot.policy import Policy

SHARE_CALLBACK = "pw:share"
GROUP_BLOCK, GROUP_INPUT = "group", "group_input"
TEXT_BLOCK, TEXT_INPUT = "text", "text_input"
MAX_INPUT = 3000  # Slack's limit of a plain_text_input


@dataclass(frozen=True, slots=True)
class GroupChoice:
    slug: str
    name: str


def postable_groups_of(core: Core, platform: str, external_id: str) -> list[GroupChoice]:
    """The groups the person behind this account may post to, by name; [] for someone
    Pinwall does not know yet (their first contact goes through the core's share flow)."""
    with core.db.uow() as uow:
        account = uow.people.account(platform, external_id)
        person = uow.people.get(account.person_id) if account else None
        if person is None or not person.active:
            return []
        groups = Policy(uow, person).postable_groups()
        groups.sort(key=lambda g: g.name.lower())
        return [GroupChoice(g.slug, g.name) for g in groups]


def _mac(raw: str, key: bytes) -> str:
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()[:32]


def sign(data: dict[str, Any], key: bytes) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return raw + "." + _mac(raw, key)


def verified(metadata: str, key: bytes) -> dict[str, Any] | None:
    raw, _, mac = metadata.rpartition(".")
    if not raw or not hmac.compare_digest(mac, _mac(raw, key)):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text, limit) or "…", "emoji": True}


def share_modal(
    groups: list[GroupChoice], text: str, metadata: str, t: Translator
) -> dict[str, Any]:
    """The modal: the group as a select (the first preselected where there is one), the
    text prefilled with the message's."""
    options = [
        {"text": _plain(g.name, MAX_OPTION_TEXT), "value": g.slug[:MAX_OPTION_VALUE]}
        for g in groups[:MAX_OPTIONS]
    ]
    select: dict[str, Any] = {
        "type": "static_select",
        "action_id": GROUP_INPUT,
        "placeholder": _plain(to_plain(t("slack.share.group_placeholder")), MAX_PLACEHOLDER),
        "options": options,
    }
    if len(options) == 1:
        select["initial_option"] = options[0]
    field: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": TEXT_INPUT,
        "multiline": True,
        "max_length": MAX_INPUT,
        "placeholder": _plain(to_plain(t("slack.share.text_placeholder")), MAX_PLACEHOLDER),
    }
    if text.strip():
        field["initial_value"] = text[:MAX_INPUT]
    return {
        "type": "modal",
        "callback_id": SHARE_CALLBACK,
        "private_metadata": metadata,
        "title": _plain(to_plain(t("slack.share.title")), MAX_MODAL_TITLE),
        "submit": _plain(to_plain(t("slack.share.submit")), MAX_MODAL_TITLE),
        "close": _plain(to_plain(t("slack.share.cancel")), MAX_MODAL_TITLE),
        "blocks": [
            {
                "type": "input",
                "block_id": GROUP_BLOCK,
                "label": _plain(to_plain(t("slack.share.group")), 2000),
                "element": select,
            },
            {
                "type": "input",
                "block_id": TEXT_BLOCK,
                "label": _plain(to_plain(t("slack.share.text")), 2000),
                "element": field,
            },
        ],
    }


@dataclass(frozen=True, slots=True)
class ShareSubmitted:
    """A submitted share modal: who shares what in which group (not yet checked by the
    command's grammar), or the catalog key of what is wrong with the text."""

    user_id: str
    view_id: str
    group: str
    text: str
    problem: str | None = None

    @property
    def conversation(self) -> Conversation:
        return Conversation(external_id=self.user_id, direct=True)

    @property
    def time(self) -> datetime:
        return datetime.now(UTC)


def share_submission(body: dict[str, Any], key: bytes) -> ShareSubmitted | None:
    """The submission of a share modal Pinwall opened for this very person; None for
    one that is not, or was altered."""
    view = body.get("view") or {}
    data = verified(str(view.get("private_metadata") or ""), key)
    user = str((body.get("user") or {}).get("id") or "")
    if data is None or not user or data.get("u") != user:
        return None
    values = (view.get("state") or {}).get("values") or {}
    chosen = ((values.get(GROUP_BLOCK) or {}).get(GROUP_INPUT) or {}).get("selected_option")
    group = str((chosen or {}).get("value") or "")
    text = str(((values.get(TEXT_BLOCK) or {}).get(TEXT_INPUT) or {}).get("value") or "")
    problem = None
    if not text.strip():
        problem = "slack.share.empty"
    elif len(text) > MAX_INPUT:
        problem = "slack.share.too_long"
    return ShareSubmitted(
        user_id=user,
        view_id=str(view.get("id") or body.get("trigger_id") or ""),
        group=group,
        text=text.strip(),
        problem=problem,
    )


def share_errors(submitted: ShareSubmitted, t: Translator) -> dict[str, str]:
    """What is wrong with a submitted share, by field, in the person's language: an
    empty or too long text, no group, or what the command's grammar refuses ({} for
    nothing)."""
    if submitted.problem is not None:
        return {TEXT_BLOCK: to_plain(t(submitted.problem, max=MAX_INPUT))}
    if not submitted.group:
        return {GROUP_BLOCK: to_plain(t("slack.share.group_placeholder"))}
    try:
        grammar.parse("share", f"{submitted.group} {submitted.text}")
    except UserError as exc:
        return {TEXT_BLOCK: cut(to_plain(t(exc.key, **exc.params)), 2000)}
    return {}
