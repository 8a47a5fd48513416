"""Slack's modals: "Share to Pinwall group" on a message opens one with the person's
groups as a select and the message's text to edit (its submission is the `share`
command); `/pinwall propose` and `/pinwall settings` without more open one with the
outlets, or the language and time zone, as selects (`propose`, `settings ...`).
Building the views and reading the submissions are pure; which groups a person may post
to comes from the core's policy (`postable_groups_of`, run on the database thread).

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

from adapters.slack.inbound import Inbound
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
from bot.home import Home
from bot.i18n import LANGUAGES, Translator
from bot.markup import to_plain
from bot.outlets import OutletSpec, check
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


def said(user: str, event_id: str, name: str, arguments: str) -> Inbound:
    """A modal's submission as the command it stands for, said in the person's DM."""
    return Inbound(
        kind="command",
        event_id=event_id,
        user_id=user,
        conversation=Conversation(external_id=user, direct=True),
        time=datetime.now(UTC),
        text=f"{name} {arguments}",
        command=(name, arguments),
    )


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


# --- propose and settings: `/pinwall propose` and `/pinwall settings` without more ------

PROPOSE_CALLBACK = "pw:propose"
SETTINGS_CALLBACK = "pw:settings"
OUTLET_BLOCK, OUTLET_INPUT = "outlet", "outlet_input"
LANGUAGE_BLOCK, LANGUAGE_INPUT = "language", "language_input"
ZONE_BLOCK, ZONE_INPUT = "timezone", "timezone_input"
# The zones offered to choose from (any other IANA zone: `settings timezone <zone>`).
ZONES = (
    "Europe/Berlin",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Amsterdam",
    "Europe/Paris",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
)


def _select(action_id: str, options: list[dict[str, Any]], placeholder: str) -> dict[str, Any]:
    return {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": _plain(placeholder, MAX_PLACEHOLDER),
        "options": options[:MAX_OPTIONS],
    }


def _input(block_id: str, label: str, element: dict[str, Any]) -> dict[str, Any]:
    return {"type": "input", "block_id": block_id, "label": _plain(label, 2000), "element": element}


def _modal(callback: str, metadata: str, t: Translator, title: str, submit: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback,
        "private_metadata": metadata,
        "title": _plain(to_plain(t(title)), MAX_MODAL_TITLE),
        "submit": _plain(to_plain(t(submit)), MAX_MODAL_TITLE),
        "close": _plain(to_plain(t("slack.share.cancel")), MAX_MODAL_TITLE),
    }


def propose_modal(outlets: list[str], metadata: str, t: Translator) -> dict[str, Any]:
    """The outlet as a select (preselected where there is one), the text to publish."""
    # An outlet's name is its value: one too long for Slack is proposed to by command.
    options = [
        {"text": _plain(o, MAX_OPTION_TEXT), "value": o}
        for o in outlets
        if len(o) <= MAX_OPTION_VALUE
    ]
    select = _select(OUTLET_INPUT, options, to_plain(t("slack.propose.outlet_placeholder")))
    if len(options) == 1:
        select["initial_option"] = options[0]
    text = {
        "type": "plain_text_input",
        "action_id": TEXT_INPUT,
        "multiline": True,
        "max_length": MAX_INPUT,
        "placeholder": _plain(to_plain(t("slack.propose.text_placeholder")), MAX_PLACEHOLDER),
    }
    view = _modal(PROPOSE_CALLBACK, metadata, t, "slack.propose.title", "slack.propose.submit")
    view["blocks"] = [
        _input(OUTLET_BLOCK, to_plain(t("slack.propose.outlet")), select),
        _input(TEXT_BLOCK, to_plain(t("slack.propose.text")), text),
    ]
    return view


def settings_modal(language: str, zone: str, metadata: str, t: Translator) -> dict[str, Any]:
    """The person's language and time zone as selects, showing what they have."""
    languages = [
        {"text": _plain(to_plain(t(f"language.{code}")), MAX_OPTION_TEXT), "value": code}
        for code in LANGUAGES
    ]
    zones = [{"text": _plain(z, MAX_OPTION_TEXT), "value": z} for z in ZONES]
    if zone not in ZONES:
        zones.insert(0, {"text": _plain(zone, MAX_OPTION_TEXT), "value": zone[:MAX_OPTION_VALUE]})
    chosen_language = _select(LANGUAGE_INPUT, languages, to_plain(t("slack.settings.language")))
    chosen_language["initial_option"] = next(
        (o for o in languages if o["value"] == language), languages[0]
    )
    chosen_zone = _select(ZONE_INPUT, zones, to_plain(t("slack.settings.timezone")))
    chosen_zone["initial_option"] = next((o for o in zones if o["value"] == zone), zones[0])
    view = _modal(SETTINGS_CALLBACK, metadata, t, "slack.settings.title", "slack.settings.submit")
    view["blocks"] = [
        _input(LANGUAGE_BLOCK, to_plain(t("slack.settings.language")), chosen_language),
        _input(ZONE_BLOCK, to_plain(t("slack.settings.timezone")), chosen_zone),
    ]
    return view


def _chosen(values: dict[str, Any], block: str, action: str) -> str:
    option = ((values.get(block) or {}).get(action) or {}).get("selected_option") or {}
    return str(option.get("value") or "")


def form_submission(
    body: dict[str, Any], key: bytes
) -> tuple[str, str, dict[str, Any], dict[str, Any]] | None:
    """(user, view id, the signed metadata, the submitted values) of a propose or
    settings modal Pinwall opened for this very person; None otherwise."""
    view = body.get("view") or {}
    data = verified(str(view.get("private_metadata") or ""), key)
    user = str((body.get("user") or {}).get("id") or "")
    if data is None or not user or data.get("u") != user:
        return None
    values = (view.get("state") or {}).get("values") or {}
    return user, str(view.get("id") or body.get("trigger_id") or ""), data, values


def propose_command(
    values: dict[str, Any], outlets: dict[str, OutletSpec], t: Translator
) -> tuple[str, dict[str, str]]:
    """The `propose` arguments of a submitted propose modal, or what is wrong with it by
    field (the outlet's own length limit included): nothing is proposed then."""
    outlet = _chosen(values, OUTLET_BLOCK, OUTLET_INPUT)
    text = str(((values.get(TEXT_BLOCK) or {}).get(TEXT_INPUT) or {}).get("value") or "").strip()
    spec = outlets.get(outlet)
    if spec is None:
        return "", {OUTLET_BLOCK: to_plain(t("slack.propose.outlet_placeholder"))}
    if not text:
        return "", {TEXT_BLOCK: to_plain(t("slack.share.empty"))}
    problem = check(spec.limits, text)
    if problem is not None and problem.what == "length":
        unit = t(f"outlets.{problem.unit}")
        why = t(
            "error.proposal_too_long",
            outlet=spec.name,
            actual=problem.actual,
            limit=problem.limit,
            unit=unit,
        )
        return "", {TEXT_BLOCK: cut(to_plain(why), 2000)}
    arguments = f"{outlet} {text}"
    try:
        grammar.parse("propose", arguments)
    except UserError as exc:
        return "", {TEXT_BLOCK: cut(to_plain(t(exc.key, **exc.params)), 2000)}
    return arguments, {}


def settings_commands(values: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The `settings` commands for what the person changed in the settings modal."""
    out = []
    language = _chosen(values, LANGUAGE_BLOCK, LANGUAGE_INPUT)
    zone = _chosen(values, ZONE_BLOCK, ZONE_INPUT)
    if language in LANGUAGES and language != data.get("l"):
        out.append(f"language {language}")
    if zone and zone != data.get("z"):
        out.append(f"timezone {zone}")
    return out


def form_view(
    command: tuple[str, str] | None, home: Home, outlets: list[str], user: str, key: bytes
) -> dict[str, Any] | None:
    """The modal a bare `/pinwall settings` or `propose` opens; None where the core
    answers instead (no outlet to propose to)."""
    t = Translator(home.language)
    outlets = [o for o in outlets if len(o) <= MAX_OPTION_VALUE]
    if command == ("settings", ""):
        data = {"u": user, "l": home.language, "z": home.timezone}
        return settings_modal(home.language, home.timezone, sign(data, key), t)
    if command == ("propose", "") and outlets:
        return propose_modal(outlets, sign({"u": user}, key), t)
    return None
