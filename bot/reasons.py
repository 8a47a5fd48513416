"""Technical reasons in the reader's language.

The guarded fetcher (jobs/fetch.py) and the outlets (jobs/outlets/) say why something
failed in short English phrases fit for a log line ("127.0.0.1 is a loopback address",
"Mastodon: server error 502"). People read them inside a sentence of their own
language: `reason()` turns each known phrase into the catalog's words (`reason.*`), keeps
an English one as it is for English readers, and tells German readers of a phrase it does
not know only that it was a technical error (the log and the audit entry keep the text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.i18n import Translator
from bot.markup import Markup, esc

# The fetcher's kinds of address it refuses (jobs.fetch.address_problem), by catalog key.
_ADDRESSES = {
    "cloud metadata address": "metadata",
    "unspecified address": "unspecified",
    "loopback address": "loopback",
    "link-local address": "link_local",
    "multicast address": "multicast",
    "shared address (100.64.0.0/10)": "shared",
    "reserved address": "reserved",
    "private address": "private",
    "non-public address": "non_public",
}
_SERVICE = r"(?P<service>Mastodon|Bluesky|Telegram)"
_V6 = r"(?P<v6> embedded in IPv6)?"
# Each known phrase: its pattern, and its catalog key under `reason.` (the pattern's
# named groups are the key's parameters; `problem` is an address kind of above).
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern + r"$"), key)
    for pattern, key in (
        (r"(?P<ip>\S+) is an? (?P<problem>.+?)" + _V6, "address"),
        (r"(?P<host>\S+) resolves to (?P<ip>\S+), an? (?P<problem>.+?)" + _V6, "resolves_to"),
        (r"(?P<host>\S+) resolves to .+", "resolves_odd"),
        (r"scheme .* is not http or https", "scheme"),
        (r"no host in the URL", "no_host"),
        (r"not a valid URL", "bad_url"),
        (r"more than (?P<n>\d+) redirects", "redirects"),
        (r"a redirect to an invalid URL", "bad_redirect"),
        (r"(connect |read )?timed out after (?P<seconds>[\d.]+) s", "timeout"),
        (r"cannot resolve (?P<host>[^:]+): .*", "no_dns"),
        (r"cannot connect to (?P<host>\S+?): .*", "no_connection"),
        (r"unsupported content encoding .*", "encoding"),
        (r"bad \S+ data", "encoding"),
        (r"body .*over the cap of (?P<cap>\d+)( bytes)?", "too_large"),
        (_SERVICE + r": too many requests|Telegram: flood control", "too_many"),
        (_SERVICE + r": (server|Bot API) not reachable", "service_down"),
        (_SERVICE + r": server error (?P<status>\d+)", "service_error"),
        (
            _SERVICE + r": (no answer in time|cut off) after the (post|status) was sent.*",
            "maybe_sent",
        ),
        (_SERVICE + r" refused the post.*", "refused_post"),
        (_SERVICE + r" refused the (login|access token|bot's token).*", "refused_login"),
        (_SERVICE + r" takes at most (?P<n>\d+) characters.*", "too_long"),
        (_SERVICE + r" takes at most (?P<n>\d+) (images|media files|files).*", "too_many_media"),
        (_SERVICE + r" takes only images.*", "images_only"),
        (r"no connection to the webhook.*", "webhook_down"),
        (r"no answer from the webhook.*", "webhook_silent"),
        (r"the webhook answered (?P<status>\d+)", "webhook_error"),
        (r"the webhook refused it \((?P<status>\d+)\)", "webhook_refused"),
        (r"no answer in time", "no_answer"),
        (r"interrupted while publishing", "interrupted"),
    )
)


def reason(t: Translator, text: str) -> Markup:
    """`text`, a reason from the fetcher or an outlet, as the reader's language says it."""
    raw = " ".join(str(text).split())
    for pattern, key in _PHRASES:
        m = pattern.match(raw)
        if m is None:
            continue
        params: dict[str, str] = {k: v or "" for k, v in m.groupdict().items()}
        if "problem" in params:
            kind = _ADDRESSES.get(params["problem"])
            if kind is None:
                continue
            params["problem"] = t(f"reason.kind.{kind}")
            params["v6"] = t("reason.in_ipv6") if params.get("v6") else Markup("")
        return t(f"reason.{key}", **params)
    return esc(raw) if t.language == "en" else t("reason.other")


def localized_error(t: Translator, params: Mapping[str, Any]) -> dict[str, Any]:
    """A message's parameters with its `error` (an outlet's or the fetcher's reason, as
    stored) in the reader's language."""
    out = dict(params)
    if isinstance(out.get("error"), str):
        out["error"] = reason(t, out["error"])
    return out


# Every catalog key `reason` may name (tests check both catalogs have them).
KEYS = (*dict.fromkeys(key for _, key in _PHRASES), "other")
ADDRESS_KINDS = tuple(_ADDRESSES.values())
