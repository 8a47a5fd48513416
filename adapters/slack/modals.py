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
from zoneinfo import available_timezones

from adapters.slack.inbound import Inbound, WantedFile
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
from bot.ids import parse_id
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


def may_comment(core: Core, platform: str, external_id: str, value: str) -> bool:
    """Whether the person behind this account may read (and so comment on) the post the
    Comment button with this value names; the core answers a press otherwise."""
    if not value.isdigit():
        return False
    with core.db.uow() as uow:
        account = uow.people.account(platform, external_id)
        person = uow.people.get(account.person_id) if account else None
        if person is None or not person.active:
            return False
        try:
            Policy(uow, person).item(int(value))
        except UserError:
            return False
        return True


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
    # The shared message's files (the shortcut's), kept signed in the modal's metadata:
    # they go with the share.
    files: tuple[WantedFile, ...] = ()


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
        files=files_of(data),
    )


# A file as the share modal's metadata keeps it: [id, name, url, mime type, size].
MAX_METADATA = 3000  # Slack's limit of private_metadata


def share_metadata(user: str, files: tuple[WantedFile, ...], key: bytes) -> str | None:
    """The signed metadata of a share modal: the person, and the message's files; None
    when they do not fit Slack's limit (the share flow by direct message takes them)."""
    data: dict[str, Any] = {"u": user}
    if files:
        data["f"] = [[f.id, f.name, f.url, f.mime_type, f.size] for f in files]
    signed = sign(data, key)
    return signed if len(signed) <= MAX_METADATA else None


def files_of(data: dict[str, Any]) -> tuple[WantedFile, ...]:
    out: list[WantedFile] = []
    for f in data.get("f") or []:
        if isinstance(f, list) and len(f) == 5 and all(isinstance(v, str) for v in f[:3]):
            mime = f[3] if isinstance(f[3], str) else None
            size = f[4] if isinstance(f[4], int) else None
            out.append(WantedFile(f[0], f[1], f[2], mime, size))
    return tuple(out)


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
DIGEST_BLOCK, DIGEST_INPUT = "digest", "digest_input"
DIGEST_VIA = ("messenger", "mail")  # `settings digest <via>`
ITEM_BLOCK, ITEM_INPUT = "item", "item_input"
AT_BLOCK, AT_INPUT = "at", "at_input"
# The zones offered first (the company's people are mostly in Europe); then every other
# IANA zone by region, each region a group of the select (Slack filters as one types).
COMMON_ZONES = (
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
_REGIONS = (
    "Europe",
    "America",
    "Asia",
    "Africa",
    "Australia",
    "Pacific",
    "Atlantic",
    "Indian",
    "Antarctica",
    "Arctic",
)


def zone_groups() -> list[tuple[str, list[str]]]:
    """Every IANA zone of the system's database but the legacy aliases (US/Eastern,
    Etc/GMT+5), by region, each group at most MAX_OPTIONS long (America is split:
    "America A–L")."""
    by_region: dict[str, list[str]] = {r: [] for r in _REGIONS}
    for zone in available_timezones():
        region = zone.split("/", 1)[0]
        if region in by_region and "/" in zone and zone not in COMMON_ZONES:
            by_region[region].append(zone)
    groups: list[tuple[str, list[str]]] = []
    for region, zones in by_region.items():
        zones.sort()
        chunks = [zones[i : i + MAX_OPTIONS] for i in range(0, len(zones), MAX_OPTIONS)]
        for chunk in chunks:
            label = region
            if len(chunks) > 1:
                first, last = chunk[0].split("/", 1)[1][0], chunk[-1].split("/", 1)[1][0]
                label = f"{region} {first}–{last}"
            groups.append((label, chunk))
    return groups


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
    item = {
        "type": "plain_text_input",
        "action_id": ITEM_INPUT,
        "max_length": 20,
        "placeholder": _plain(to_plain(t("slack.propose.item_placeholder")), MAX_PLACEHOLDER),
    }
    at = {"type": "datetimepicker", "action_id": AT_INPUT}
    view = _modal(PROPOSE_CALLBACK, metadata, t, "slack.propose.title", "slack.propose.submit")
    view["blocks"] = [
        _input(OUTLET_BLOCK, to_plain(t("slack.propose.outlet")), select),
        _input(TEXT_BLOCK, to_plain(t("slack.propose.text")), text),
        {**_input(ITEM_BLOCK, to_plain(t("slack.propose.item")), item), "optional": True},
        {**_input(AT_BLOCK, to_plain(t("slack.propose.at")), at), "optional": True},
    ]
    return view


def settings_modal(
    language: str, zone: str, metadata: str, t: Translator, digest_via: str | None = None
) -> dict[str, Any]:
    """The person's language and time zone as selects, showing what they have; and where
    digests go (`digest_via`: "messenger" or "mail"), for who has a verified address
    while mail runs (None: not offered)."""
    languages = [
        {"text": _plain(to_plain(t(f"language.{code}")), MAX_OPTION_TEXT), "value": code}
        for code in LANGUAGES
    ]

    def option(z: str) -> dict[str, Any]:
        return {"text": _plain(z, MAX_OPTION_TEXT), "value": z[:MAX_OPTION_VALUE]}

    groups = [(to_plain(t("slack.settings.common_zones")), list(COMMON_ZONES)), *zone_groups()]
    if not any(zone in zones for _, zones in groups):  # one the database lacks: on top
        groups[0][1].insert(0, zone)
    option_groups = [
        {"label": _plain(label, MAX_OPTION_TEXT), "options": [option(z) for z in zones]}
        for label, zones in groups[:MAX_OPTIONS]
    ]
    chosen_language = _select(LANGUAGE_INPUT, languages, to_plain(t("slack.settings.language")))
    chosen_language["initial_option"] = next(
        (o for o in languages if o["value"] == language), languages[0]
    )
    chosen_zone = {
        "type": "static_select",
        "action_id": ZONE_INPUT,
        "placeholder": _plain(to_plain(t("slack.settings.timezone")), MAX_PLACEHOLDER),
        "option_groups": option_groups,
        "initial_option": option(zone),
    }
    view = _modal(SETTINGS_CALLBACK, metadata, t, "slack.settings.title", "slack.settings.submit")
    view["blocks"] = [
        _input(LANGUAGE_BLOCK, to_plain(t("slack.settings.language")), chosen_language),
        _input(ZONE_BLOCK, to_plain(t("slack.settings.timezone")), chosen_zone),
    ]
    if digest_via in DIGEST_VIA:
        ways = [
            {
                "text": _plain(to_plain(t(f"slack.settings.digest_{via}")), MAX_OPTION_TEXT),
                "value": via,
            }
            for via in DIGEST_VIA
        ]
        chosen_via = _select(DIGEST_INPUT, ways, to_plain(t("slack.settings.digest")))
        chosen_via["initial_option"] = next(o for o in ways if o["value"] == digest_via)
        view["blocks"].append(
            _input(DIGEST_BLOCK, to_plain(t("slack.settings.digest")), chosen_via)
        )
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


@dataclass(frozen=True, slots=True)
class ProposeForm:
    """A submitted propose modal as the core takes it (action "proposal.form"): the
    fields as the value, the text as typed (never read as options)."""

    value: str  # JSON: {"outlet", "item": a post's number or null, "at": Unix seconds}
    text: str


def propose_form(
    values: dict[str, Any], outlets: dict[str, OutletSpec], t: Translator, now: float
) -> tuple[ProposeForm | None, dict[str, str]]:
    """The submitted propose modal, or what is wrong with it by field (the outlet's own
    length limit, a post number that is none, a moment past): nothing is proposed then."""
    outlet = _chosen(values, OUTLET_BLOCK, OUTLET_INPUT)
    text = str(((values.get(TEXT_BLOCK) or {}).get(TEXT_INPUT) or {}).get("value") or "").strip()
    raw_item = str(((values.get(ITEM_BLOCK) or {}).get(ITEM_INPUT) or {}).get("value") or "")
    at = ((values.get(AT_BLOCK) or {}).get(AT_INPUT) or {}).get("selected_date_time")
    spec = outlets.get(outlet)
    if spec is None:
        return None, {OUTLET_BLOCK: to_plain(t("slack.propose.outlet_placeholder"))}
    if not text:
        return None, {TEXT_BLOCK: to_plain(t("slack.share.empty"))}
    if len(text) > MAX_INPUT:
        return None, {TEXT_BLOCK: to_plain(t("slack.share.too_long", max=MAX_INPUT))}
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
        return None, {TEXT_BLOCK: cut(to_plain(why), 2000)}
    item: int | None = None
    if raw_item.strip():
        try:
            item = parse_id(raw_item.strip(), "item")
        except UserError as exc:
            return None, {ITEM_BLOCK: cut(to_plain(t(exc.key, **exc.params)), 2000)}
    moment = at if isinstance(at, int) and not isinstance(at, bool) else None
    if moment is not None and moment <= now:
        return None, {AT_BLOCK: to_plain(t("slack.propose.at_past"))}
    fields = {"outlet": outlet, "item": item, "at": moment}
    return ProposeForm(json.dumps(fields, separators=(",", ":")), text), {}


def settings_commands(values: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The `settings` commands for what the person changed in the settings modal."""
    out = []
    language = _chosen(values, LANGUAGE_BLOCK, LANGUAGE_INPUT)
    zone = _chosen(values, ZONE_BLOCK, ZONE_INPUT)
    if language in LANGUAGES and language != data.get("l"):
        out.append(f"language {language}")
    if zone and zone != data.get("z"):
        out.append(f"timezone {zone}")
    via = _chosen(values, DIGEST_BLOCK, DIGEST_INPUT)
    if data.get("d") and via in DIGEST_VIA and via != data.get("d"):  # offered, and changed
        out.append(f"digest {via}")
    return out


def form_view(
    command: tuple[str, str] | None, home: Home, outlets: list[str], user: str, key: bytes
) -> dict[str, Any] | None:
    """The modal a bare `/pinwall settings` or `propose` opens; None where the core
    answers instead (no outlet to propose to)."""
    t = Translator(home.language)
    outlets = [o for o in outlets if len(o) <= MAX_OPTION_VALUE]
    if command == ("settings", ""):
        via = ("mail" if home.digest_by_mail else "messenger") if home.has_mail else None
        data = {"u": user, "l": home.language, "z": home.timezone, "d": via}
        return settings_modal(home.language, home.timezone, sign(data, key), t, via)
    if command == ("propose", "") and outlets:
        return propose_modal(outlets, sign({"u": user}, key), t)
    return None
