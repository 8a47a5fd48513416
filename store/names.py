"""Names people recognise: handles and slugs in ASCII, transliterated the way people
write their names without umlauts (Björn Müller -> bjoern.mueller, not bjorn.muller)."""

from __future__ import annotations

import re
import unicodedata

# Letters whose usual ASCII spelling is not "the base letter without its accents"; every
# other Latin letter loses its accents (é -> e, ñ -> n, ł -> l, ø -> o, ...).
_SPELLED = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "Ä": "Ae",
        "Ö": "Oe",
        "Ü": "Ue",
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "Ae",
        "œ": "oe",
        "Œ": "Oe",
        "ø": "o",
        "Ø": "O",
        "å": "aa",
        "Å": "Aa",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "ı": "i",
    }
)


def to_ascii(text: str) -> str:
    """The text in ASCII: umlauts spelled out, accents dropped, other scripts left out."""
    # NFC first, so that "u" + combining diaeresis is "ü" and spelled as "ue" too.
    spelled = unicodedata.normalize("NFC", text).translate(_SPELLED)
    folded = unicodedata.normalize("NFKD", spelled)
    return folded.encode("ascii", "ignore").decode("ascii")


_HANDLE_JUNK = re.compile(r"[^a-z0-9._-]+")


def handle_base(name: str) -> str:
    """Lowercase ASCII letters, digits and `._-` of a name: "Jürgen Weiß" -> juergen.weiss;
    "user" when nothing of it is left (a name in another script)."""
    base = _HANDLE_JUNK.sub("", ".".join(to_ascii(name).lower().split()))
    return base.strip("._-")[:32].strip("._-") or "user"


SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
# Slugs no group may have: a group's slug is its mail address (<slug>@ the mail domain),
# and these local parts are Pinwall's own (bounces@ takes delivery reports, pinwall@
# commands) or the mail operators' (RFC 2142), whatever a group would be called.
RESERVED_SLUGS = frozenset({"bounces", "pinwall", "postmaster", "abuse", "mailer-daemon"})
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """The slug a title suggests: "Sales Team" -> sales-team, "Einkauf & Logistik" ->
    einkauf-logistik; "" when nothing of it is left (a title in another script)."""
    slug = _SLUG_JUNK.sub("-", to_ascii(title).lower()).strip("-")
    return slug[:32].rstrip("-")
