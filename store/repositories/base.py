"""The base of the repositories: a session, and Core statements on its connection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Executable,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from store.driver import connection_of
from store.repositories import rows


class Repo:
    def __init__(self, session: Session) -> None:
        self.s = session

    def _run(
        self, stmt: Executable, params: dict[str, Any] | list[dict[str, Any]] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        """A Core statement on this unit of work's connection, past the ORM. Pending ORM
        changes are flushed first (when autoflush is on), as an ORM query would."""
        session = self.s
        if session.autoflush:
            session.flush()
        return self._connection().execute(stmt, params)

    def _connection(self) -> Connection:
        """The session's connection in its current transaction (asked for once in it)."""
        return connection_of(self.s, flush=False)

    def _flushed_connection(self) -> Connection:
        """The connection, after pending ORM changes were flushed (as `_run` does)."""
        return connection_of(self.s)

    def _expire(self, model: type[Any], ids: Iterable[Any]) -> None:
        """Objects of these rows loaded in this session show what a Core statement wrote
        (they load again when next used)."""
        identity_map = self.s.identity_map
        if not identity_map:
            return
        for pk in ids:
            obj = identity_map.get(identity_key(model, pk))
            if obj is not None:
                self.s.expire(obj)

    def _add_now(self, obj: Any) -> None:
        """Stores a new object at once (it has its id), as add + flush do (store.
        repositories.rows). One stored already is refused (adding it again would index
        it twice, say)."""
        rows.add_now(self.s, obj)
