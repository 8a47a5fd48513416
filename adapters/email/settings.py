"""The mail bridge's settings (PINWALL_MAIL_*, PINWALL_SMTP_*)."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.config import Settings
from bot.errors import ConfigError


def host_port(value: str) -> tuple[str, int]:
    """ "127.0.0.1:2525" -> ("127.0.0.1", 2525); "[::1]:25" -> ("::1", 25)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ValueError(
            "must be host:port, like 0.0.0.0:2525 (port 0 picks a free port), "
            "lmtp://host:port or lmtp:/path/to/socket"
        )
    return host.strip("[]"), int(port)


class Listen(NamedTuple):
    """Where the mail listener listens, and which protocol it speaks there."""

    protocol: Literal["smtp", "lmtp"]
    host: str = ""
    port: int = 0
    path: str | None = None  # a unix socket (LMTP only)


def listen_at(value: str) -> Listen:
    """ "127.0.0.1:2525" or "smtp://127.0.0.1:2525": SMTP; "lmtp://127.0.0.1:2424": LMTP
    over TCP; "lmtp:/run/pinwall/lmtp.sock": LMTP on a unix socket (the MTA delivers to
    a local socket, as Postfix's lmtp transport does)."""
    value = value.strip()
    scheme, sep, rest = value.partition(":")
    if sep and scheme.lower() in ("smtp", "lmtp") and rest.startswith("/"):
        protocol: Literal["smtp", "lmtp"] = "lmtp" if scheme.lower() == "lmtp" else "smtp"
        if rest.startswith("//"):
            return Listen(protocol, *host_port(rest[2:]))
        if protocol == "lmtp":
            return Listen("lmtp", path=rest)
        raise ValueError("must be smtp://host:port, lmtp://host:port or lmtp:/path/to/socket")
    return Listen("smtp", *host_port(value))


class MailSettings(Settings):
    # Where Pinwall takes mail for PINWALL_MAIL_DOMAIN (the company's mail server routes
    # that subdomain here): host:port (SMTP), lmtp://host:port or lmtp:/path (LMTP);
    # unset: no mail is received.
    mail_listen: str | None = None
    mail_domain: str | None = None
    # Whose Authentication-Results header Pinwall believes (the receiving MTA's own
    # authserv-id, e.g. mx.firma.de); unset: only a DKIM signature Pinwall verifies counts.
    mail_authserv_id: str | None = None
    # Mails one sender may send a minute before the next ones are deferred (451).
    mail_per_minute: int = Field(10, ge=1, le=10_000)
    # The company's relay for mail out; unset: Pinwall sends no mail.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout: float = Field(30.0, gt=0, le=600)

    @field_validator("mail_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value:
            listen_at(value)
        return value or None

    @field_validator("mail_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and ("." not in value.strip(".") or "@" in value or " " in value):
            raise ValueError("must be the mail domain routed to Pinwall, like pinwall.firma.de")
        return value.strip().lower() if value else None

    @model_validator(mode="after")
    def _mail_complete(self) -> MailSettings:
        if (self.mail_listen or self.smtp_host) and not self.mail_domain:
            raise ConfigError(
                "PINWALL_MAIL_DOMAIN: missing; the mail domain routed to Pinwall, like "
                "pinwall.firma.de (PINWALL_MAIL_LISTEN or PINWALL_SMTP_HOST is set)"
            )
        if self.smtp_user and self.smtp_password is None:
            raise ConfigError("PINWALL_SMTP_PASSWORD: missing (PINWALL_SMTP_USER is set)")
        return self

    @property
    def mail_configured(self) -> bool:
        return bool(self.mail_listen or self.smtp_host)

    def mail_listen_address(self) -> Listen | None:
        return listen_at(self.mail_listen) if self.mail_listen else None
