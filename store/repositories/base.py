"""The base of the repositories: a session, and Core statements on its connection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Executable,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.util import identity_key

from store.driver import connection_of, insert_into
from store.models import (
    table_of,
)


@dataclass(frozen=True, slots=True)
class _InsertPlan:
    table: Any
    columns: tuple[tuple[str, Any], ...]  # (attribute, value when not set)
    # left out when not set and without a default here: the database fills them in
    server_defaults: frozenset[str]
    returns_id: bool


_INSERT_PLANS: dict[type[Any], _InsertPlan] = {}


def _insert_plan(model: type[Any]) -> _InsertPlan:
    plan = _INSERT_PLANS.get(model)
    if plan is None:
        table = table_of(model)
        columns: list[tuple[str, Any]] = []
        server_defaults: set[str] = set()
        returns_id = False
        for column in table.columns:
            if column.primary_key and column.autoincrement is not False and column.key == "id":
                returns_id = True
                continue
            if column.server_default is not None:
                server_defaults.add(column.key)
            default = column.default
            if default is not None and not default.is_scalar:
                raise TypeError(f"{model.__name__}.{column.key}: only scalar defaults")
            columns.append((column.key, getattr(default, "arg", None)))
        plan = _INSERT_PLANS[model] = _InsertPlan(
            table, tuple(columns), frozenset(server_defaults), returns_id
        )
    return plan


T = TypeVar("T")
_MAPPED: dict[type[Any], tuple[Mapper[Any], tuple[str, ...], tuple[int, ...]]] = {}


def _mapped_columns(model: type[Any]) -> tuple[Mapper[Any], tuple[str, ...], tuple[int, ...]]:
    """A model's mapper, the attribute names of its table's columns in table order, and
    where its primary key columns are among them."""
    found = _MAPPED.get(model)
    if found is None:
        mapper = sa_inspect(model)
        columns = list(table_of(model).columns)
        keys = tuple(mapper.get_property_by_column(c).key for c in columns)
        pk = tuple(columns.index(c) for c in mapper.primary_key)
        found = _MAPPED[model] = (mapper, keys, pk)
    return found


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

    def _loaded(self, model: type[T], values: Sequence[Any], *, refresh: bool = False) -> T:
        """The object of `model` whose row has these values (all its table's columns, in
        order), as an ORM query would give it: the one this session holds already (with
        `refresh`, showing these values, as populate_existing does), else a new
        persistent one in the session, without any SQL."""
        mapper, keys, pk = _mapped_columns(model)
        key = mapper.identity_key_from_primary_key(tuple(values[i] for i in pk))
        held = self.s.identity_map.get(key)
        if held is not None:
            if refresh:
                for name, value in zip(keys, values, strict=True):
                    set_committed_value(held, name, value)
            return cast(T, held)
        # What SQLAlchemy's loading does for a row of a new identity (orm/loading.py,
        # _instance): public make_transient_to_detached() + add() cost five
        # times as much, mostly in cascades there is nothing to cascade to.
        # tests/store/test_driver.py holds this to the ORM's behaviour.
        obj = mapper.class_manager.new_instance()
        state = instance_state(obj)
        # Set past the attribute events: nothing is modified, nothing to commit.
        state.dict.update(zip(keys, values, strict=True))
        self._attach(state, key)
        self.s.identity_map._add_unpresent(state, key)
        return cast(T, obj)

    def _attach(self, state: Any, key: Any) -> None:
        """Gives a transient state its identity in this session (the caller puts it into
        the identity map)."""
        state.key = key
        state.identity_token = None
        state.session_id = self.s.hash_key

    def _loaded_or_none(self, model: type[T], values: Sequence[Any]) -> T | None:
        """As `_loaded`, for the columns of an outer join: None when they are all NULL."""
        _, _, pk = _mapped_columns(model)
        if all(values[i] is None for i in pk):
            return None
        return self._loaded(model, values)

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
        """INSERTs a new object at once with one prebuilt statement, without a flush of
        the unit of work, and makes it persistent in the session as add() + flush() do.
        Columns left unset get their scalar default (or NULL), on the object too; ones
        with a server default get that."""
        if instance_state(obj).key is not None:
            raise InvalidRequestError(f"{obj!r} is stored already")
        plan = _insert_plan(type(obj))
        state = obj.__dict__
        values: dict[str, Any] = {}
        for key, default in plan.columns:
            if key not in state:
                if default is None and key in plan.server_defaults:
                    continue  # loaded when first used, as after an ORM flush
                setattr(obj, key, default)
            values[key] = state[key]
        stmt = insert_into(plan.table, tuple(values), returning_id=plan.returns_id)
        if plan.returns_id:
            obj.id = stmt.scalar(self._flushed_connection(), values)
        else:
            stmt.run(self._flushed_connection(), [values])
        mapper, _, _ = _mapped_columns(type(obj))
        state = instance_state(obj)
        # As a flush registers what it inserted (Session._register_persistent): a state
        # left over from a rollback under the same key gives way, and a rollback of
        # this transaction (or savepoint) takes the object out of the session again.
        self._attach(
            state, mapper.identity_key_from_primary_key(mapper.primary_key_from_instance(obj))
        )
        self.s.identity_map.replace(state)
        state._commit_all(state.dict, self.s.identity_map)
        transaction = self.s._transaction
        if transaction is not None:
            transaction._new[state] = True
        # What the database filled in (server defaults) loads when first used.
        state._expire_attributes(state.dict, state.unloaded)
