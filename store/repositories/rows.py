"""ORM objects from prebuilt Core statements, through public SQLAlchemy API only.

A command reads its person, account, group and membership and inserts its post or
membership. As ORM queries and an ORM flush, most of that time was the ORM's execution
and the flush's unit-of-work machinery around statements SQLite runs in microseconds
(bench/commands.py on SQLite, per call: the actor 240 -> 145 us, a group with the
membership 150 -> 90 us, adding a post 560 -> 230 us; issue 20). Here the statements
are prebuilt (store/driver.py) and their rows become ORM objects as a query gives them:

- `loaded`: the object this session holds for the row's primary key, else a new one
  given the values as stored (`set_committed_value`) and made persistent without SQL
  by the public `make_transient_to_detached` + `Session.add`;
- `add_now`: one prebuilt INSERT (RETURNING the id) instead of add + flush, the object
  then made persistent the same way. A rollback of the transaction or savepoint it was
  inserted in takes it out of the session again (transient, its values kept), as
  after a flush: the session events `after_rollback` and `after_commit` below.

tests/store/test_driver.py holds both to the ORM's behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Table, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import (
    Session,
    SessionTransaction,
    make_transient,
    make_transient_to_detached,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from store.driver import connection_of, insert_into

T = TypeVar("T")

_NEW = "pinwall.inserted"  # in Session.info: [(transaction, object)] added by add_now


@dataclass(frozen=True, slots=True)
class Shape:
    """How a model's table row maps onto it."""

    table: Table
    keys: tuple[str, ...]  # attribute names of the table's columns, in table order
    pk: tuple[int, ...]  # where the primary key columns are among them
    # add_now: (attribute, value when not set) of the columns it inserts
    inserted: tuple[tuple[str, Any], ...]
    server_defaults: frozenset[str]  # not set and no default here: the database's
    returns_id: bool  # an autoincrement `id`, given by the database
    plain: bool  # add_now can insert it (scalar defaults only)
    relationships: tuple[str, ...]


_SHAPES: dict[type[Any], Shape] = {}


def shape_of(model: type[Any]) -> Shape:
    shape = _SHAPES.get(model)
    if shape is None:
        shape = _SHAPES[model] = _shape(model)
    return shape


def _shape(model: type[Any]) -> Shape:
    mapper = sa_inspect(model)
    table = mapper.local_table
    assert isinstance(table, Table)
    columns = list(table.columns)
    keys = tuple(mapper.get_property_by_column(c).key for c in columns)
    inserted: list[tuple[str, Any]] = []
    server_defaults: set[str] = set()
    returns_id, plain = False, True
    for column, key in zip(columns, keys, strict=True):
        if column.primary_key and column.autoincrement is not False and key == "id":
            returns_id = True
            continue
        if column.server_default is not None:
            server_defaults.add(key)
        default = column.default
        if default is not None and not default.is_scalar:
            plain = False  # a callable or SQL default: the flush computes it
        if column.onupdate is not None or column.server_onupdate is not None:
            plain = False
        inserted.append((key, getattr(default, "arg", None)))
    return Shape(
        table=table,
        keys=keys,
        pk=tuple(columns.index(c) for c in mapper.primary_key),
        inserted=tuple(inserted),
        server_defaults=frozenset(server_defaults),
        returns_id=returns_id,
        plain=plain and mapper.version_id_col is None,
        relationships=tuple(r.key for r in mapper.relationships),
    )


def loaded(session: Session, model: type[T], values: Sequence[Any], *, refresh: bool = False) -> T:
    """The object of `model` whose row has these values (all its table's columns, in
    order), as an ORM query gives it: the one this session holds already (with
    `refresh` showing these values, as populate_existing does), else a new persistent
    one, without SQL."""
    shape = shape_of(model)
    if session.identity_map:
        key = identity_key(model, tuple(values[i] for i in shape.pk))
        held = session.identity_map.get(key)
        if held is not None:
            if refresh:
                for name, value in zip(shape.keys, values, strict=True):
                    set_committed_value(held, name, value)
            return held
    # As loading does: the values as stored (no attribute events, no validators).
    obj = model()
    for name, value in zip(shape.keys, values, strict=True):
        set_committed_value(obj, name, value)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def loaded_or_none(session: Session, model: type[T], values: Sequence[Any]) -> T | None:
    """As `loaded`, for the columns of an outer join: None when its key is all NULL."""
    if all(values[i] is None for i in shape_of(model).pk):
        return None
    return loaded(session, model, values)


def add_now(session: Session, obj: Any) -> None:
    """Stores a new object at once (it has its id), as add + flush do, with one prebuilt
    INSERT past the flush where the model allows (scalar defaults, no relationship set
    on the object). Columns left unset get their default, on the object too; ones with a
    server default (and none here) load when first used. One stored already is refused."""
    state = sa_inspect(obj)
    if state.has_identity:
        raise InvalidRequestError(f"{obj!r} is stored already")
    shape = shape_of(type(obj))
    given = state.dict
    if not shape.plain or any(r in given for r in shape.relationships):
        session.add(obj)
        session.flush()
        return
    values: dict[str, Any] = {}
    for key, default in shape.inserted:
        if key not in given:
            if default is None and key in shape.server_defaults:
                continue
            setattr(obj, key, default)
        values[key] = given[key]
    stmt = insert_into(shape.table, tuple(values), returning_id=shape.returns_id)
    conn = connection_of(session)  # pending ORM changes first, as a flush orders them
    if shape.returns_id:
        obj.id = stmt.scalar(conn, values)
    else:
        stmt.run(conn, [values])
    make_transient_to_detached(obj)
    session.add(obj)
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_NEW, []).append((transaction, obj))


def _active(transaction: SessionTransaction | None) -> bool:
    while transaction is not None:
        if not transaction.is_active:
            return False
        transaction = transaction.parent
    return True


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    """What add_now inserted in the transaction (or savepoint) being rolled back leaves
    the session, transient again with its values, as the ORM does with what it flushed.
    Before the rollback expires what the session holds: the values stay."""
    inserted = session.info.get(_NEW)
    if not inserted:
        return
    kept = []
    for transaction, obj in inserted:
        if _active(transaction):
            kept.append((transaction, obj))
            continue
        if obj in session:
            session.expunge(obj)
        make_transient(obj)
    session.info[_NEW] = kept


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    """The outermost transaction committed: what it inserted stays for good. A savepoint
    released: what it inserted belongs to the enclosing transaction now."""
    inserted = session.info.get(_NEW)
    if not inserted:
        return
    released = session.get_nested_transaction()
    if released is None:
        del session.info[_NEW]
        return
    session.info[_NEW] = [
        (released.parent if transaction is released else transaction, obj)
        for transaction, obj in inserted
    ]
