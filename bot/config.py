"""Settings: PINWALL_* environment variables, a pinwall.toml, and secret files.

Precedence: environment, then secret files (PINWALL_SECRETS_DIR), then pinwall.toml
(keys in lower case without the prefix; PINWALL_CONFIG names another file), then
the defaults below. A wrong value stops start-up with one line naming the setting.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import secrets
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.messenger import Messenger
    from bot.outlets import OutletSettings

PREFIX = "PINWALL_"


def parse_cpu_affinity(value: object) -> str:
    """A PINWALL_CPU_AFFINITY value: auto, off, or a CPU this process may use (Linux),
    normalized; ValueError says what is wrong. pinwall.toml may give a number."""
    text = str(value).strip().lower()
    if text in ("auto", "off"):
        return text
    if not (text.isascii() and text.isdigit()):
        raise ValueError("must be auto, off or a CPU number")
    if not hasattr(os, "sched_getaffinity"):
        raise ValueError("a CPU number works on Linux only (use auto or off)")
    allowed = sorted(os.sched_getaffinity(0))
    if int(text) not in allowed:
        usable = ", ".join(map(str, allowed))
        raise ValueError(f"CPU {int(text)} is not one this process may use ({usable})")
    return str(int(text))


class Settings(BaseSettings):
    """The core's settings. Each messenger adds its own in a subclass (its descriptor's
    `settings`); the top floor's Settings class (app/config.py) inherits from all of them
    and sets MESSENGERS."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, extra="ignore", case_sensitive=False, validate_default=True
    )
    # The messengers of this build (set by app/config.py on the class it composes).
    MESSENGERS: ClassVar[tuple[Messenger[Any, Any], ...]] = ()

    database_url: str = "sqlite:///./pinwall.db"
    data_dir: Path = Path("./pinwall-data")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None
    secret_key: SecretStr | None = None
    admins: str = ""
    default_language: Literal["en", "de"] = "en"
    # The company Pinwall serves, as people call it ("Bäckerei Nord"): messengers that
    # introduce the bot to a newcomer (Telegram's bot description) name it.
    company_name: str = Field("", max_length=64)
    default_timezone: str = "Europe/Berlin"
    fetch_allowlist: str = ""
    link_previews: bool = True  # off: shared links keep their URL as title, nothing fetched
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"  # auto: uvloop where installed
    cpu_affinity: str = "off"  # off | auto | a CPU number (bot.runtime.keep_on_one_cpu)

    # The Telegram bot Pinwall speaks as: the Telegram messenger's (adapters/telegram) and
    # the telegram_channel outlet's (jobs/outlets), which must not depend on each other.
    telegram_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"

    outbox_max_attempts: int = Field(8, ge=1, le=100)
    outbox_lease_seconds: int = Field(120, ge=1, le=3600)
    file_max_mb: int = Field(50, ge=1, le=2048)
    # [rate_limits.telegram] overall = 30, per_dm = 1, per_room = 0.33 (messages a second)
    rate_limits: dict[str, dict[str, float]] = Field(default_factory=dict)
    # [outlets.NAME] kind = "mastodon", quorum = 2, and the kind's options; the secret
    # from PINWALL_OUTLET_<NAME>_TOKEN (see bot.outlets; the newsroom is always there)
    outlets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    proposal_expiry_days: int = Field(7, ge=1, le=365)
    # `pinwall privacy forget`: a forgotten person's posts and comments stay without
    # their author ("anonymize") or are deleted.
    privacy_forget_posts: Literal["anonymize", "delete"] = "anonymize"
    # Days to keep each kind of content, 0 keeps it; applied hourly by a scheduled job.
    # In pinwall.toml also as a table: [retention] feed_entries_days = 180, ...
    retention_feed_entries_days: int = Field(180, ge=0, le=36500)
    retention_posts_days: int = Field(0, ge=0, le=36500)
    retention_audit_days: int = Field(0, ge=0, le=36500)
    # Received messenger events are kept only to recognise redeliveries.
    retention_inbox_days: int = Field(30, ge=1, le=36500)
    # Per-person read tracking (who was shown which post; `items` then shows a count).
    # Off unless an admin switches it on: works councils ask that no one's reading be
    # recorded by default (issue 9). Switching it off again erases what was recorded.
    read_tracking: bool = False
    # An anonymous poll shows its results once this many voted, so that no single vote
    # can be deduced (what works councils ask of anonymous surveys).
    poll_anonymous_minimum: int = Field(5, ge=1, le=1000)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(PREFIX + "CONFIG", "pinwall.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get(PREFIX + "SECRETS_DIR")
        # A container that mounts no secrets has no /run/secrets: settings come from the
        # environment then, without a warning at every command.
        if secrets_dir and Path(secrets_dir).is_dir():
            from pydantic_settings import SecretsSettingsSource

            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/Berlin)") from None
        return value

    @field_validator("event_loop")
    @classmethod
    def _loop(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed here (use auto or asyncio)")
        return value

    @field_validator("cpu_affinity", mode="before")
    @classmethod
    def _cpu(cls, value: object) -> str:
        return parse_cpu_affinity(value)

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql", "postgres:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("admins")
    @classmethod
    def _admins(cls, value: str) -> str:
        known = {m.name for m in cls.MESSENGERS}
        for entry in filter(None, (e.strip() for e in value.split(","))):
            platform, sep, ident = entry.partition(":")
            if not sep or not ident or (known and platform not in known):
                raise ValueError(f"{entry!r} is not platform:id (e.g. slack:U0123)")
        return value

    @field_validator("telegram_base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("fetch_allowlist")
    @classmethod
    def _allowlist(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is neither a host nor a CIDR") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _retention_table(cls, data: Any) -> Any:
        """`[retention] posts_days = 365` in pinwall.toml is `retention_posts_days`."""
        if isinstance(data, dict) and isinstance(data.get("retention"), dict):
            data = dict(data)
            for key, value in data.pop("retention").items():
                data.setdefault(f"retention_{key}", value)
        return data

    @model_validator(mode="after")
    def _outlets_valid(self) -> Settings:
        outlet_settings(self)  # raises ConfigError naming the setting
        return self

    # --- derived ------------------------------------------------------------------

    def admin_accounts(self) -> frozenset[tuple[str, str]]:
        out = set()
        for entry in filter(None, (e.strip() for e in self.admins.split(","))):
            platform, _, ident = entry.partition(":")
            out.add((platform, ident))
        return frozenset(out)

    @property
    def messengers(self) -> list[str]:
        """The messengers configured to run (their credentials set), the console aside."""
        return [m.name for m in self.MESSENGERS if not m.local and m.is_configured(self)]

    def links_url(self) -> str | None:
        """Where links Pinwall hands out (newsroom entries) point: PINWALL_PUBLIC_URL, else
        the local HTTP address — a working link on this machine, as on a console demo."""
        if self.public_url:
            return self.public_url
        if self.http_port == 0:
            return None  # a free port, unknown until bound
        try:
            anywhere = ipaddress.ip_address(self.http_host).is_unspecified  # 0.0.0.0, ::
        except ValueError:
            anywhere = False  # a host name
        host = "localhost" if anywhere else self.http_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.http_port}"

    def secret_key_value(self) -> str:
        """PINWALL_SECRET_KEY, or one generated once into the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key

    def redacted(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "********" if value.get_secret_value() else ""
            elif name == "database_url" and isinstance(value, str) and "@" in value:
                scheme, _, rest = value.partition("://")
                creds, _, host = rest.rpartition("@")
                user = creds.split(":")[0]
                out[name] = f"{scheme}://{user}:********@{host}" if ":" in creds else value
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        outlets = outlet_settings(self).outlets
        out["outlet_tokens"] = {o.name: "********" for o in outlets if o.token}
        return out


SettingsT = TypeVar("SettingsT", bound=Settings)


def load_settings(cls: type[SettingsT], /, **overrides: Any) -> SettingsT:
    """Loads the settings of `cls` (the core's Settings, or app.config's: the program's
    with every messenger's); a wrong value raises ConfigError naming it in one line."""
    try:
        return cls(**overrides)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            name = PREFIX + "_".join(str(p) for p in e["loc"]).upper()
            problems.append(f"{name}: {e['msg']}")
        raise ConfigError("; ".join(problems)) from None


# --- outlets ---------------------------------------------------------------------------

_OUTLET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Kinds whose publisher needs a secret (telegram_channel may use PINWALL_TELEGRAM_TOKEN).
_TOKEN_KINDS = frozenset({"mastodon", "bluesky", "linkedin", "facebook", "webhook"})


def outlet_token_variable(name: str) -> str:
    return f"{PREFIX}OUTLET_{name.upper()}_TOKEN"


def outlet_settings(settings: Settings) -> OutletSettings:
    """The `[outlets.NAME]` tables as specs (the newsroom always among them); a wrong
    table raises ConfigError naming the setting."""
    from bot.outlets import (
        DEFAULT_LIMITS,
        KINDS,
        NEWSROOM,
        NEWSROOM_SPEC,
        OutletSettings,
        OutletSpec,
    )

    specs: list[OutletSpec] = []
    for raw_name, table in settings.outlets.items():
        setting = f"{PREFIX}OUTLETS_{raw_name.upper()}"
        name = raw_name.lower()
        if not _OUTLET_NAME.match(name):
            raise ConfigError(
                f"{setting}: {raw_name!r} is not an outlet name (1 to 32 lowercase letters, "
                "digits or _, starting with a letter)"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{setting}: must be a table like [outlets.{name}] kind = ...")
        # A TOML date (token_expires = 2027-02-05) as its ISO text: options stay plain
        # values that `pinwall config` can show.
        options = {k: v.isoformat() if isinstance(v, date) else v for k, v in table.items()}
        kind = options.pop("kind", NEWSROOM if name == NEWSROOM else None)
        if kind not in KINDS:
            raise ConfigError(f"{setting}_KIND: {kind!r} is not one of {', '.join(KINDS)}")
        if name == NEWSROOM and kind != NEWSROOM:
            raise ConfigError(f"{setting}_KIND: the outlet newsroom is the built-in Atom feed")
        if "token" in options:
            raise ConfigError(
                f"{setting}_TOKEN: secrets do not belong in pinwall.toml; "
                f"set {outlet_token_variable(name)} in the environment"
            )
        quorum = options.pop("quorum", 1)
        if not isinstance(quorum, int) or isinstance(quorum, bool) or not 1 <= quorum <= 20:
            raise ConfigError(f"{setting}_QUORUM: must be a whole number from 1 to 20")
        limits = DEFAULT_LIMITS[kind]
        if "max_length" in options:
            max_length = options.pop("max_length")
            if not isinstance(max_length, int) or max_length < 1:
                raise ConfigError(f"{setting}_MAX_LENGTH: must be a positive whole number")
            if limits.max_length is not None:
                max_length = min(max_length, limits.max_length)
            limits = replace(limits, max_length=max_length)
        token = os.environ.get(outlet_token_variable(name)) or None
        if kind == "telegram_channel" and token is None and settings.telegram_token is not None:
            token = settings.telegram_token.get_secret_value()
        if token is None and (kind in _TOKEN_KINDS or kind == "telegram_channel"):
            raise ConfigError(
                f"{outlet_token_variable(name)}: missing; the {kind} outlet {name} needs it"
            )
        if kind == "webhook":
            url = options.get("url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ConfigError(f"{setting}_URL: the webhook's http:// or https:// URL")
        specs.append(OutletSpec(name, kind, options, token, quorum, limits))
    if not any(s.name == NEWSROOM for s in specs):
        specs.insert(0, NEWSROOM_SPEC)
    return OutletSettings(tuple(specs), timedelta(days=settings.proposal_expiry_days))
