"""Words people type, in German and English, whatever language they chose.

Pinwall answers in one language but understands both: every keyword of the grammar has
its German form (`täglich` for `daily`, `Mitglied` for `member`), and the commands have
German names where they read naturally and collide with nothing (`teilen`, `gruppen`).
A word is compared folded: lower case, umlauts spelled out (`TÄGLICH`, `taeglich`).
GLOSSARY.md lists the same words for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from store.names import to_ascii


def fold(word: str) -> str:
    """A typed word as it is compared: "Täglich" -> taeglich, "Mo." -> mo."""
    return to_ascii(word.strip().lower()).removesuffix(".")


# --- command names ----------------------------------------------------------------------

# The German names of commands (the first word), as people write them; their folded
# spellings (`hinzufuegen`) are accepted too. A name whose command this Pinwall lacks
# is ignored (see command_aliases).
GERMAN_COMMANDS: Mapping[str, str] = {
    "hilfe": "help",
    "gruppen": "groups",
    "gruppe": "group",
    "beitreten": "join",
    "verlassen": "leave",
    "austreten": "leave",
    "mitglieder": "members",
    "hinzufügen": "add",
    "entfernen": "remove",
    "teilen": "share",
    "beiträge": "items",
    "kommentieren": "comment",
    "benachrichtigung": "notify",
    "zusammenfassung": "digest",
    "kanäle": "outlets",
    "vorschlagen": "propose",
    "offen": "pending",
    "freigeben": "approve",
    "ablehnen": "reject",
    "überarbeiten": "revise",
    "zurückziehen": "withdraw",
    "suchen": "search",
    "suche": "search",
    "einladen": "invite",
    "einladungen": "invites",
    "widerrufen": "revoke",
    "einlösen": "redeem",
    "verknüpfen": "link",
    "einstellungen": "settings",
    "rolle": "role",
    "verbinden": "bridge",
    "protokoll": "audit",
    "abbrechen": "cancel",
    "zeigen": "show",
    "ankündigen": "announce",
    "ankündigung": "announcement",
    "umfrage": "poll",
    "mail": "email",
}

# German forms of subcommands (the second word), by command.
GERMAN_SUBCOMMANDS: Mapping[str, Mapping[str, str]] = {
    "group": {"erstellen": "create", "anlegen": "create", "neu": "create"},
    "feed": {
        "hinzufügen": "add",
        "neu": "add",
        "liste": "list",
        "entfernen": "remove",
        "löschen": "remove",
    },
    "digest": {
        "jetzt": "now",
        "täglich": "daily",
        "wöchentlich": "weekly",
        "aus": "off",
        "stopp": "off",
    },
    "settings": {
        "sprache": "language",
        "zeitzone": "timezone",
        "zusammenfassung": "digest",
        "zusammenfassungen": "digest",
    },
    "outbox": {"fehlgeschlagen": "failed", "wiederholen": "retry"},
    "email": {
        "gehalten": "held",
        "zurückgehalten": "held",
        "freigeben": "release",
        "verwerfen": "drop",
        "löschen": "drop",
    },
}


def _folded_table(table: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word, meaning in table.items():
        out[word] = meaning
        out[fold(word)] = meaning
    return out


def command_aliases(known: Iterable[str]) -> dict[str, str]:
    """Every German command name (as written and folded) whose command is in `known`."""
    names = set(known)
    return {
        alias: name
        for alias, name in _folded_table(GERMAN_COMMANDS).items()
        if name in names and alias not in names
    }


_SUBCOMMANDS = {command: _folded_table(table) for command, table in GERMAN_SUBCOMMANDS.items()}


def subcommand(command: str, typed: str) -> str:
    """The subcommand a typed second word names: `digest täglich` -> daily."""
    word = typed.lower()
    return _SUBCOMMANDS.get(command, {}).get(fold(word), word)


def german_name(command: str) -> str | None:
    """The German name of a command, as written ("teilen" for share), if it has one."""
    return next((alias for alias, name in GERMAN_COMMANDS.items() if name == command), None)


# --- choices ----------------------------------------------------------------------------

# The German (and other accepted) forms of the grammar's choices, by the choice.
CHOICES: Mapping[str, tuple[str, ...]] = {
    # notify modes
    "instant": ("sofort",),
    "daily": ("täglich",),
    "weekly": ("wöchentlich",),
    "mute": ("stumm", "aus"),
    "mail": ("e-mail", "email", "per-mail", "mails"),
    "messenger": ("chat",),
    # roles
    "member": ("mitglied",),
    "guest": ("gast",),
    "partner": ("partnerin", "partner:in"),
    "gatekeeper": ("freigeber", "freigeberin", "freigeber:in"),
    "admin": ("administrator", "administratorin"),
    # languages
    "en": ("english", "englisch"),
    "de": ("deutsch", "german"),
}
_CHOICE_OF: dict[str, list[str]] = {}
for _choice, _forms in CHOICES.items():
    for _form in (*_forms, *(fold(f) for f in _forms)):
        _CHOICE_OF.setdefault(_form, []).append(_choice)


def choice(typed: str, allowed: Iterable[str]) -> str | None:
    """The allowed choice a typed word names (`täglich` -> daily), or None."""
    options = tuple(allowed)
    word = typed.strip().lower()
    if word in options:
        return word
    folded = fold(word)
    if folded in options:
        return folded
    return next((c for c in _CHOICE_OF.get(folded, ()) if c in options), None)


# --- yes and no, on and off ---------------------------------------------------------------

YES = frozenset({"yes", "y", "ja", "j", "ok", "okay", "confirm", "bestaetigen", "on", "an"})
NO = frozenset({"no", "n", "nein", "deny", "off", "aus"})


def yes_or_no(typed: str) -> bool | None:
    """True for yes/ja/on/an, False for no/nein/off/aus, None for anything else."""
    word = fold(typed)
    return True if word in YES else False if word in NO else None
