"""The foundation of the models: aware UTC datetimes, the declarative base, the enums
the columns hold."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    MetaData,
    Table,
    TypeDecorator,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME in its usual text form ("2026-11-27 08:00:00.000000"), written and
    read with the standard library's isoformat()/fromisoformat() instead of SQLAlchemy's
    %-formatting and regular expression: a command writes and reads a dozen of them."""

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        def process(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        return process


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would drop the zone)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _SQLiteDateTime()  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table, typed as one: for the prebuilt Core statements."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Role(enum.StrEnum):
    MEMBER = "member"
    GATEKEEPER = "gatekeeper"
    ADMIN = "admin"
    GUEST = "guest"
    PARTNER = "partner"

    @property
    def is_external(self) -> bool:
        return self in (Role.GUEST, Role.PARTNER)


class Visibility(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    SECRET = "secret"  # noqa: S105  (a group kind, not a password)


class NotifyMode(enum.StrEnum):
    INSTANT = "instant"
    DAILY = "daily"
    WEEKLY = "weekly"
    MUTE = "mute"


class ItemKind(enum.StrEnum):
    LINK = "link"
    NOTE = "note"
    FILE = "file"
    FEED_ENTRY = "feed_entry"
    ANNOUNCEMENT = "announcement"  # holds an announcement in each of its groups
    POLL = "poll"


class PreviewStatus(enum.StrEnum):
    """Where a link's preview stands. A link starts with none (NULL): its preview is due."""

    FETCHING = "fetch1"  # the first try runs; preview_at: until when the claim holds
    RETRY = "retry"  # the first try failed; the second is due at preview_at
    REFETCHING = "fetch2"  # the second try runs
    DONE = "done"  # stored (it may have found nothing better than the URL)
    FAILED = "failed"  # gave up: the post shows its URL
    SKIPPED = "skipped"  # shared before previews existed


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"  # the recipient may no longer see what it carried
    DEAD = "dead"


class InboxStatus(enum.StrEnum):
    RECEIVED = "received"
    APPLIED = "applied"
    FAILED = "failed"
