"""Prebuilt statements handed straight to the database driver.

A command runs a handful of small statements. SQLite does each in a few microseconds;
SQLAlchemy's way around one (looking the statement up in its compiled cache, execution
context, cursor result) cost more than the statement itself, which made it a good part
of a command's time. The statements of the hot path are therefore built once with
SQLAlchemy's expression language, compiled once per dialect (public API: the compiled
statement's string, binds and positiontup, the types' bind and result processors), and
then run on the DB-API cursor of the unit of work's own connection, inside its
transaction: the values go through their columns' bind processors and the rows through
their result processors, as SQLAlchemy would do it.

Where someone listens to the engine's cursor events (tests that count statements) or
echo is on, the statement goes through `Connection.exec_driver_sql` instead, so that
nothing is hidden from them. Errors of the driver are raised as SQLAlchemy's exceptions
(`sqlalchemy.exc.IntegrityError`, ...), as from any other statement.

bench/commands.py, SQLite (issue 20): the same statements through `Connection.execute`
cost about a third more CPU per command; all through `exec_driver_sql`, with the ORM
fast path gone too, commands/s and the ratio to the floor fell by about a third.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, exc, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ReturnsRows
from sqlalchemy.types import NullType


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # positional parameters in order, or None for named
    binds: dict[str, Callable[[Any], Any]]  # bind processors by parameter
    own: dict[str, Any]  # values the statement gives itself (a LIMIT's OFFSET 0)
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]  # columns' result processors
    # positional parameters in order with their bind processors (None: named parameters)
    positional: tuple[tuple[str, Callable[[Any], Any] | None], ...] | None


class Prebuilt:
    """One statement, compiled once per dialect and run on the driver.

    Its bound parameters take the types given in `types` (by name), else the type of
    the bound parameter itself; a parameter with neither a type nor a value of its own
    is refused when the statement is first compiled. Expanding parameters (IN lists)
    are not supported: their SQL depends on the number of values."""

    def __init__(self, stmt: ClauseElement, types: dict[str, Any] | None = None) -> None:
        self.stmt = stmt
        self.types = dict(types or {})
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Any) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is not None:
            return compiled
        c = self.stmt.compile(dialect=dialect)
        assert isinstance(c, SQLCompiler)
        if c.insert_prefetch or c.update_prefetch:
            # SQLAlchemy computes these columns' defaults as it executes: give them.
            missing = [col.key for col in (*c.insert_prefetch, *c.update_prefetch)]
            raise TypeError(f"columns with Python-side defaults left out: {missing}")
        types = dict(self.types)
        own: dict[str, Any] = {}
        for name, bind in c.binds.items():
            if bind.expanding:
                raise TypeError(f"an expanding parameter cannot be prebuilt: {name}")
            if name in types:
                continue
            if not bind.required and bind.callable is None:
                own[name] = bind.value
            elif isinstance(bind.type, NullType):
                raise TypeError(f"a parameter without a type: {name}")
            types[name] = bind.type
        binds = {
            name: p
            for name, type_ in types.items()
            if (p := type_.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # The columns of its rows: a SELECT's, or the RETURNING ones of an INSERT/UPDATE.
        columns = list(self.stmt.exported_columns) if isinstance(self.stmt, ReturnsRows) else []
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        names = tuple(c.positiontup) if c.positiontup is not None else None
        compiled = self._compiled[dialect.name] = _Compiled(
            c.string,
            names,
            binds,
            own,
            tuple((i, p) for i, p in enumerate(results) if p is not None),
            None if names is None else tuple((n, binds.get(n)) for n in names),
        )
        return compiled

    def _params(self, compiled: _Compiled, rows: Sequence[dict[str, Any]]) -> list[Any]:
        names, processors, own = compiled.names, compiled.binds, compiled.own
        if own:
            rows = [{**own, **row} for row in rows]
        if len(rows) == 1 and compiled.positional is not None:  # most statements
            row = rows[0]
            return [tuple([row[n] if p is None else p(row[n]) for n, p in compiled.positional])]
        if not processors:
            if names is None:
                return list(rows)
            return [tuple(row[n] for n in names) for row in rows]
        # Column by column (every row has the same parameters): each distinct value once,
        # as a batch's rows often share their time and payload.
        keys = names if names is not None else tuple(rows[0])
        columns: list[list[Any]] = []
        for name in keys:
            values = [row[name] for row in rows]
            process = processors.get(name)
            if process is not None:
                if len(values) == 1:
                    values = [process(values[0])]
                else:
                    distinct = {id(v): v for v in values}
                    done = {i: process(v) for i, v in distinct.items()}
                    values = [done[id(v)] for v in values]
            columns.append(values)
        if names is None:
            return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
        return list(zip(*columns, strict=True))

    def _execute(
        self, conn: Connection, rows: Sequence[dict[str, Any]], *, many: bool
    ) -> tuple[_Compiled, list[Any] | None]:
        """Runs the statement; the rows it returned (None: it returns none)."""
        compiled = self._compile(conn.dialect)
        params = self._params(compiled, rows)
        if _watched(conn):
            # Through SQLAlchemy, so that its cursor events and echo see the statement.
            result = conn.exec_driver_sql(compiled.sql, params if many else params[0])
            return compiled, (list(result.all()) if result.returns_rows else None)
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        cursor = dbapi_conn.cursor()
        try:
            if many:
                cursor.executemany(compiled.sql, params)
            else:
                cursor.execute(compiled.sql, params[0])
            return compiled, (list(cursor.fetchall()) if cursor.description is not None else None)
        except conn.dialect.loaded_dbapi.Error as e:
            raise exc.DBAPIError.instance(
                compiled.sql,
                params if many else params[0],
                e,
                conn.dialect.loaded_dbapi.Error,
                dialect=conn.dialect,
            ) from e
        finally:
            cursor.close()

    def run(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """The statement once per row, in one executemany."""
        self._execute(conn, rows, many=True)

    def all(self, conn: Connection, row: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The statement for one set of parameters; its rows, as processed tuples."""
        compiled, fetched = self._execute(conn, (row or {},), many=False)
        if fetched is None:
            return []
        processed = compiled.processed
        if not processed:
            return [tuple(r) for r in fetched]
        rows = []
        for r in fetched:
            values = list(r)
            for i, process in processed:
                values[i] = process(values[i])
            rows.append(tuple(values))
        return rows

    def first(self, conn: Connection, row: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        rows = self.all(conn, row)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, row: dict[str, Any] | None = None) -> Any:
        found = self.first(conn, row)
        return None if found is None else found[0]


@cache
def insert_into(table: Table, columns: tuple[str, ...], *, returning_id: bool = False) -> Prebuilt:
    """INSERT of these columns, each given as the parameter of its name (built once)."""
    stmt = insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in columns})
    return Prebuilt(stmt.returning(table.c.id) if returning_id else stmt)


@cache
def update_by_id(table: Table, columns: tuple[str, ...]) -> Prebuilt:
    """UPDATE of these columns of the row whose id is the parameter `row_id` (built once)."""
    return Prebuilt(
        update(table)
        .where(table.c.id == bindparam("row_id", type_=table.c.id.type))
        .values({c: bindparam(c, type_=table.c[c].type) for c in columns})
    )


_CONNECTION = "pinwall.connection"  # in Session.info: (transaction, its connection)


def connection_of(session: Session, *, flush: bool = True) -> Connection:
    """The session's connection in its current transaction (asked for once in it), after
    pending ORM changes were flushed (when autoflush is on), as an ORM query would."""
    if flush and session.autoflush:
        session.flush()
    transaction = session.get_transaction()
    known = session.info.get(_CONNECTION)
    if transaction is not None and known is not None and known[0] is transaction:
        connection: Connection = known[1]
        return connection
    connection = session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), connection)
    return connection


def _watched(conn: Connection) -> bool:
    """Someone listens to this connection's statements (cursor events) or echo is on: then
    a statement goes SQLAlchemy's whole way, so that nothing is hidden from them.
    `Connection.dispatch` (the connection's event listeners) is the one attribute here
    that SQLAlchemy does not document; nothing with a leading underscore is used."""
    dispatch = conn.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute or conn.engine.echo)
