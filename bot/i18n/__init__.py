"""Message catalogs (English and German) and locale-aware formatting."""

from __future__ import annotations

import tomllib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.markup import Markup, esc

LANGUAGES = ("en", "de")
_HERE = Path(__file__).parent


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        # A table of plural forms is a leaf: {one = "...", other = "..."}.
        if isinstance(value, dict) and not set(value) <= {"zero", "one", "other"}:
            _flatten(f"{name}.", value, out)
        else:
            out[name] = value


@cache
def catalog(language: str) -> dict[str, Any]:
    """`<language>.toml`, then one `<language>.<topic>.toml` per capability (feeds,
    digests, ...); a key defined twice is a mistake and stops the program."""
    flat: dict[str, Any] = {}
    paths = [_HERE / f"{language}.toml", *sorted(_HERE.glob(f"{language}.*.toml"))]
    for path in paths:
        with path.open("rb") as f:
            part: dict[str, Any] = {}
            _flatten("", tomllib.load(f), part)
        if twice := sorted(set(part) & set(flat)):
            raise RuntimeError(f"{path.name} defines keys defined before: {', '.join(twice)}")
        flat.update(part)
    return flat


def normalize_language(code: str | None) -> str | None:
    """'de-AT', 'de_DE', 'DE' -> 'de'; languages without a catalog -> None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:  # a catalog typo shows, it does not crash
        return "{" + key + "}"


class Translator:
    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else "en"
        self._catalog = catalog(self.language)
        self._fallback = catalog("en")

    def raw(self, key: str) -> Any:
        value = self._catalog.get(key)
        return value if value is not None else self._fallback.get(key, key)

    def has(self, key: str) -> bool:
        return key in self._catalog or key in self._fallback

    def __call__(self, key: str, /, **params: Any) -> Markup:
        template = self.raw(key)
        if isinstance(template, dict):
            count = int(params.get("count", 0))
            form = "zero" if count == 0 and "zero" in template else "one" if count == 1 else "other"
            template = template.get(form, template.get("other", key))
        safe = _Params({k: v if isinstance(v, Markup) else esc(str(v)) for k, v in params.items()})
        return Markup(str(template).format_map(safe))

    def datetime(self, when: datetime, timezone: str) -> str:
        local = when.astimezone(ZoneInfo(timezone))
        if self.language == "de":
            return local.strftime("%d.%m.%Y %H:%M")
        return local.strftime("%Y-%m-%d %H:%M")


def translator_for(language: str) -> Translator:
    """The translator of a language, made once per process: it only reads its catalogs."""
    return _translator(language if language in LANGUAGES else "en")


@cache
def _translator(language: str) -> Translator:
    return Translator(language)
