"""Times and dates as people type them, in German and English.

A small grammar, not a library's guesses: a phrase is a clock time, a day, both (in
either order), `jetzt`/`now`, or `in <number> <unit>`.

  clock  8 | 08 | 8:00 | 08.00 | 8 Uhr | 8h | 8:30 Uhr | 8am | 8:30 pm
  day    heute/today | morgen/tomorrow | übermorgen | Mo..So / Montag..Sonntag /
         mon..sun / monday..sunday | 24.12. | 24.12.2026 | 24.12.26 | 2026-12-24
  both   morgen 9:00 | morgen um 9 | Mo 14:00 | tomorrow at 9am | 24.12. 10:00 |
         2026-12-24T10:00 | 9:00 morgen
  later  in 2h | in 2 Stunden | in 30 min | in 3 Tagen | in 1 week

A clock time alone is its next occurrence; a weekday or a date without a year is the
next one whose moment is still ahead; a day without a clock time starts at 00:00.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from store.names import to_ascii

# Day names in English and German, with their usual abbreviations (a trailing dot is
# ignored): mon, monday, mo, montag, ...
DAYS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        ("mon", "monday", "mo", "montag"),
        ("tue", "tues", "tuesday", "di", "die", "dienstag"),
        ("wed", "wednesday", "mi", "mit", "mittwoch"),
        ("thu", "thur", "thurs", "thursday", "do", "don", "donnerstag"),
        ("fri", "friday", "fr", "fre", "freitag"),
        ("sat", "saturday", "sa", "sam", "samstag", "sonnabend"),
        ("sun", "sunday", "su", "so", "son", "sonntag"),
    )
):
    for _name in _names:
        DAYS[_name] = _number

NOW_WORDS = frozenset({"jetzt", "now", "sofort"})
_DAYS_FROM_TODAY = {
    "heute": 0,
    "today": 0,
    "morgen": 1,
    "tomorrow": 1,
    "uebermorgen": 2,
}
# Words between the parts that mean nothing on their own: "morgen um 9", "am Montag",
# "next monday at 9", "nächsten Montag".
_FILLERS = frozenset(
    {"um", "at", "am", "on", "ab", ",", "next", "naechsten", "naechster", "kommenden"}
)
_CLOCK_SUFFIXES = frozenset({"uhr", "h", "oclock"})
_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "minuten"), timedelta(minutes=1)),
    **dict.fromkeys(("h", "std", "hour", "hours", "stunde", "stunden"), timedelta(hours=1)),
    **dict.fromkeys(("d", "day", "days", "tag", "tage", "tagen"), timedelta(days=1)),
    **dict.fromkeys(("w", "week", "weeks", "woche", "wochen"), timedelta(weeks=1)),
}
_ONE = frozenset({"a", "an", "one", "ein", "eine", "einer", "einem", "einen"})

_TOKEN = re.compile(
    r"(?P<iso>\d{4}-\d{1,2}-\d{1,2}(?:t\d{1,2}:\d{2}(?::\d{2})?)?)"
    r"|(?P<dmy>\d{1,2}\.\d{1,2}\.\d{2,4})"
    r"|(?P<dm>\d{1,2}\.\d{1,2}\.?)"
    r"|(?P<hm>\d{1,2}:\d{2})"
    r"|(?P<number>\d+)"
    r"|(?P<word>[a-z]+)\.?"
    r"|(?P<comma>,)"
    r"|(?P<space>\s+)"
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok] | None:
    folded = to_ascii(text.lower()).replace("'", "")  # o'clock -> oclock
    out: list[_Tok] = []
    i = 0
    while i < len(folded):
        m = _TOKEN.match(folded, i)
        if m is None:
            return None
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(_Tok(kind, m.group(kind)))
        i = m.end()
    return out


def _hm(hour: int, minute: int) -> int | None:
    return hour * 60 + minute if 0 <= hour <= 23 and 0 <= minute <= 59 else None


def _clock(toks: list[_Tok], i: int) -> tuple[int, int] | None:
    """(minutes after midnight, index after it) for a clock time at toks[i]."""
    tok = toks[i]
    if tok.kind == "number" and len(tok.text) <= 2:
        hour, minute = int(tok.text), 0
    elif tok.kind == "hm" or (tok.kind == "dm" and not tok.text.endswith(".")):
        h, m = re.split(r"[:.]", tok.text)
        if len(m) != 2:
            return None
        hour, minute = int(h), int(m)
    else:
        return None
    nxt = toks[i + 1].text if i + 1 < len(toks) else ""
    if nxt in ("am", "pm") and 1 <= hour <= 12:
        return (hour % 12 + (12 if nxt == "pm" else 0)) * 60 + minute, i + 2
    at = _hm(hour, minute)
    if at is None:
        return None
    return at, i + 2 if nxt in _CLOCK_SUFFIXES else i + 1


@dataclass(frozen=True, slots=True)
class _Day:
    offset: int | None = None  # days from today
    weekday: int | None = None
    day: date | None = None  # with its year
    day_month: tuple[int, int] | None = None  # without a year


def _valid_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day(toks: list[_Tok], i: int) -> tuple[_Day, int | None] | None:
    """The day at toks[i], with the clock time it carries (an ISO date and time)."""
    tok = toks[i]
    if tok.kind == "word":
        if tok.text in _DAYS_FROM_TODAY:
            return _Day(offset=_DAYS_FROM_TODAY[tok.text]), None
        if tok.text in DAYS:
            return _Day(weekday=DAYS[tok.text]), None
        return None
    if tok.kind == "iso":
        day_part, _, clock_part = tok.text.partition("t")
        y, mo, d = (int(x) for x in day_part.split("-"))
        found = _valid_date(y, mo, d)
        if found is None:
            return None
        at = None
        if clock_part:
            h, m = clock_part.split(":")[:2]
            at = _hm(int(h), int(m))
            if at is None:
                return None
        return _Day(day=found), at
    if tok.kind == "dmy":
        d, mo, y = (int(x) for x in tok.text.split("."))
        found = _valid_date(y + 2000 if y < 100 else y, mo, d)
        return (_Day(day=found), None) if found is not None else None
    if tok.kind == "dm":
        d, mo = (int(x) for x in tok.text.rstrip(".").split("."))
        if _valid_date(2000, mo, d) is None:  # a leap year: 29.02. is a date
            return None
        return _Day(day_month=(d, mo)), None
    return None


def _later(toks: list[_Tok]) -> timedelta | None:
    """`in 2h`, `in 2 Stunden`, `in einer Stunde` (toks without the `in`)."""
    if len(toks) != 2 or toks[1].kind != "word" or toks[1].text not in _UNITS:
        return None
    if toks[0].kind == "number":
        count = int(toks[0].text)
    elif toks[0].text in _ONE:
        count = 1
    else:
        return None
    return _UNITS[toks[1].text] * count if 0 < count <= 10_000 else None


class _Now:
    """The phrase means right now (`jetzt`, `now`)."""


RIGHT_NOW = _Now()


def moment(text: str, zone: str, now: datetime) -> datetime | _Now | None:
    """The moment a phrase names, in `zone` (returned in now's time zone); RIGHT_NOW for
    `jetzt`/`now`; None when the phrase is not one this grammar knows."""
    toks = _tokens(text)
    if not toks:
        return None
    if len(toks) == 1 and toks[0].text in NOW_WORDS:
        return RIGHT_NOW
    if toks[0].text == "in":
        delta = _later(toks[1:])
        return None if delta is None else (now + delta).replace(second=0, microsecond=0)
    day: _Day | None = None
    clock: int | None = None
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.text in _FILLERS and (tok.text != "am" or i == 0 or toks[i - 1].kind == "word"):
            i += 1
            continue
        if clock is None and (found_clock := _clock(toks, i)) is not None:
            clock, i = found_clock
            continue
        if day is None and (found_day := _day(toks, i)) is not None:
            day, carried = found_day
            if carried is not None:
                if clock is not None:
                    return None
                clock = carried
            i += 1
            continue
        return None
    if day is None and clock is None:
        return None
    return _resolve(day, clock, ZoneInfo(zone), now)


def _resolve(day: _Day | None, clock: int | None, tz: ZoneInfo, now: datetime) -> datetime:
    local_now = now.astimezone(tz)
    today = local_now.date()
    minute = clock or 0

    def at(d: date) -> datetime:
        naive = datetime(d.year, d.month, d.day, minute // 60, minute % 60)
        return naive.replace(tzinfo=tz)

    if day is None:  # a clock time alone: its next occurrence
        when = at(today)
        if when <= local_now:
            when = at(today + timedelta(days=1))
    elif day.offset is not None:
        when = at(today + timedelta(days=day.offset))
    elif day.weekday is not None:
        when = at(today + timedelta(days=(day.weekday - today.weekday()) % 7))
        if when <= local_now:
            when = at(today + timedelta(days=(day.weekday - today.weekday()) % 7 + 7))
    elif day.day_month is not None:
        d, mo = day.day_month
        when = _next_day_month(d, mo, today.year, at, local_now)
    else:
        assert day.day is not None
        when = at(day.day)
    return when.astimezone(now.tzinfo)


def _next_day_month(
    d: int, mo: int, year: int, at: Callable[[date], datetime], local_now: datetime
) -> datetime:
    """The next 24.12. (or 29.02.) whose moment is still ahead."""
    for y in range(year, year + 9):
        found = _valid_date(y, mo, d)
        if found is not None and at(found) > local_now:
            return at(found)
    raise AssertionError("a day and month that never comes")  # pragma: no cover


def clock_minutes(text: str) -> int | None:
    """Minutes after midnight of a clock time alone ("8", "8 Uhr", "08.00", "8:30 pm")."""
    toks = _tokens(text)
    if not toks:
        return None
    found = _clock(toks, 0)
    return found[0] if found is not None and found[1] == len(toks) else None


def weekday(text: str) -> int | None:
    """0 (Monday) ... 6 (Sunday) for a day name: "monday", "Mon", "mo.", "Montag"."""
    return DAYS.get(to_ascii(text.strip().lower()).removesuffix("."))


def is_moment(words: list[str]) -> bool:
    """Whether these words, together, name a moment (the grammar takes as many words
    after `--at` as name one)."""
    fixed = datetime(2000, 1, 3, 12, 0, tzinfo=ZoneInfo("UTC"))
    return moment(" ".join(words), "UTC", fixed) is not None
