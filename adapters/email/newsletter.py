"""Newsletters in, pure: a newsletter mail -> one entry like a feed's (its title, the
article it links to first, a short text), without the sender's tracking: redirects
through a click tracker are unwrapped to the link they lead to, tracking parameters go,
and images (1x1 pixels among them) are never fetched or kept."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

from adapters.email.inbound import Mail

# Query parameters in which click trackers carry the real link (Google's /url?q=,
# Mailchimp's and SendGrid's redirectors, Microsoft's safelinks ?url=, "upn", ...).
REDIRECT_PARAMS = ("url", "q", "u", "upn", "redirect", "redirect_url", "target", "link", "r")
TEXT_LIMIT = 1200
# Links that are not articles: the sender's unsubscribe and preferences, mail addresses.
NOT_ARTICLES = ("unsubscribe", "abmelden", "preferences", "mailto:", "tel:", "view in browser")


def unwrap(url: str, depth: int = 0) -> str:
    """The link a tracking redirect leads to ("https://click.x/ls?upn=https%3A%2F%2F..."
    -> "https://..."), with utm_* and the like removed; other links as they are."""
    parts = urlsplit(url)
    if depth < 3:
        for name, value in parse_qsl(parts.query, keep_blank_values=False):
            if name.lower() in REDIRECT_PARAMS and value.startswith(("http://", "https://")):
                return unwrap(value, depth + 1)
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(("utm_", "mc_")) and k.lower() not in ("fbclid", "gclid")
    ]
    query = "&".join(f"{k}={v}" if v else k for k, v in kept)
    return parts._replace(query=query, fragment="").geturl()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (href, its text)
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or None
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


# Words of a list's double opt-in mail ("please confirm your subscription").
CONFIRMATION_WORDS = (
    "confirm",
    "verify",
    "opt-in",
    "bestätig",
    "bestaetig",
    "verifizier",
    "anmeldung",
    "abonnement",
)


def is_confirmation(mail: Mail) -> bool:
    """Whether a mail reads like a mailing list's request to confirm a subscription."""
    said = f"{mail.subject}\n{mail.text}".lower()
    return any(word in said for word in CONFIRMATION_WORDS)


def confirmation_links(mail: Mail) -> list[str]:
    """The links of a confirmation mail as they are (not unwrapped: the token is the
    point), the sender's unsubscribe links left out."""
    if not mail.html:
        return []
    parser = _Links()
    parser.feed(mail.html)
    parser.close()
    return [
        href
        for href, label in parser.links
        if href.startswith(("http://", "https://"))
        and "unsubscribe" not in f"{href} {label}".lower()
    ]


@dataclass(frozen=True)
class Entry:
    title: str
    url: str | None  # the first article it links to, unwrapped
    text: str  # its text, with each article's label and unwrapped link


def entry_of(mail: Mail) -> Entry:
    links: list[tuple[str, str]] = []
    if mail.html:
        parser = _Links()
        parser.feed(mail.html)
        parser.close()
        for href, label in parser.links:
            lowered = f"{href} {label}".lower()
            if not href.startswith(("http://", "https://")) or any(
                word in lowered for word in NOT_ARTICLES
            ):
                continue
            links.append((unwrap(href), label))
    lines = [f"{label}: {url}" if label else url for url, label in links]
    text = "\n".join(lines) if lines else mail.text
    return Entry(
        title=mail.subject or (links[0][1] if links else ""),
        url=links[0][0] if links else None,
        text=text[:TEXT_LIMIT],
    )
