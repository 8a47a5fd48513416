"""A person's data, for operators: what is stored (export), erasing it (forget), and a
person who left the company (deactivate), as `pinwall people` and `pinwall privacy` run them.

Which rows belong to a person is read off the schema, not listed by hand: every column
with a foreign key to `people.id`. So a table that a later capability adds (digest
times, feeds someone added, votes on proposals) is exported and erased without a change
here. The audit log refers to people by id (no foreign key): it keeps its entries when
a person is forgotten, and that id then names only a pseudonym ("former-12").

Each operation runs in the caller's unit of work and writes its own audit entry, so the
change and its record commit together.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Column, Executable, String, Table, cast, delete, or_, select, update
from sqlalchemy.orm import Session

from bot.role_menus import queue_role_menus
from store.models import (
    Account,
    AuditEntry,
    Base,
    Comment,
    Draft,
    InboxEvent,
    InboxStatus,
    Invite,
    Item,
    OutboxMessage,
    OutboxStatus,
    Person,
    Proposal,
    ProposalStatus,
    Role,
    SearchDoc,
)
from store.uow import UnitOfWork

PostsPolicy = Literal["anonymize", "delete"]
AUTHORED = ("items", "comments")  # rows a person wrote: kept anonymized or deleted, by policy
# Rows about the person that are theirs although the reference would allow keeping them
# without it: the messages sent to them.
THEIRS = ("outbox",)
# Columns that only say who decided on someone else's row (a moderator on a held mail or a
# join request): their export names the row and the decision, not the other person's data.
DECIDED = frozenset({("held_mails", "decided_by"), ("join_requests", "decided_by")})
DECISION = ("id", "status", "decided_at")
OPERATOR = "operator"  # who an audit entry of the CLI names as actor (details["by"])


class PrivacyError(Exception):
    """A refusal with a one-line reason for the operator."""


def _changed(session: Session, statement: Executable) -> int:
    """Runs an UPDATE or DELETE; how many rows it changed."""
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0))


def person_columns() -> Iterator[tuple[Table, Column[Any]]]:
    """Every (table, column) that refers to a person, in a stable order."""
    for table in Base.metadata.sorted_tables:
        if table.name == "people":
            continue
        for column in table.columns:
            if any(fk.column.table.name == "people" for fk in column.foreign_keys):
                yield table, column


def find(uow: UnitOfWork, ref: str) -> Person:
    """A person by handle (with or without @) or by number (`12`)."""
    ref = ref.strip().removeprefix("@").lower()
    person = uow.people.get(int(ref)) if ref.isdigit() else uow.people.by_handle(ref)
    if person is None:
        raise PrivacyError(f"no person {ref!r} (give a handle, e.g. alice, or a number)")
    return person


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(uow: UnitOfWork, table: Table, *where: Any) -> list[dict[str, Any]]:
    query = select(table).where(*where).order_by(*table.primary_key.columns)
    return [{k: _plain(v) for k, v in row.items()} for row in uow.session.execute(query).mappings()]


def export(uow: UnitOfWork, person: Person, now: datetime) -> dict[str, Any]:
    """Everything stored about the person, as JSON-ready data (DSGVO Art. 15)."""
    people = Base.metadata.tables["people"]
    data: dict[str, Any] = {
        "exported_at": now.isoformat(),
        "person": _rows(uow, people, people.c.id == person.id)[0],
    }
    for table, column in person_columns():
        if table.name == "search_docs":
            continue  # stemmed words of posts that are exported whole anyway
        rows = _rows(uow, table, column == person.id)
        if (table.name, column.name) in DECIDED:
            decided = [{k: r[k] for k in DECISION if k in r} for r in rows]
            if decided:
                data[f"{table.name}_decided"] = decided
            continue
        if rows:
            data.setdefault(table.name, []).extend(r for r in rows if r not in data[table.name])
    audit = AuditEntry.__table__
    data["audit_log"] = _rows(uow, audit, audit.c.actor_id == person.id)  # type: ignore[arg-type]
    uow.audit.add(
        at=now,
        actor_id=None,
        action="privacy.exported",
        subject=person.handle,
        details={"by": OPERATOR, "person": person.id},
    )
    return data


@dataclass
class Outcome:
    """What an operation changed, table by table, for the operator's summary."""

    counts: dict[str, int] = field(default_factory=dict)
    # Stored files nothing refers to any more: removed from the blob store after commit.
    files: list[str] = field(default_factory=list)

    def add(self, what: str, n: int) -> None:
        if n:
            self.counts[what] = self.counts.get(what, 0) + n

    def summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing else"


def _stop_deliveries(uow: UnitOfWork, person: Person, outcome: Outcome) -> None:
    """Messages not yet sent to the person (by person or to one of their direct chats)."""
    accounts = uow.session.execute(
        select(Account.platform, Account.external_id).where(Account.person_id == person.id)
    ).all()
    to_them = [OutboxMessage.person_id == person.id] + [
        (OutboxMessage.platform == p)
        & (OutboxMessage.target == a)
        & (OutboxMessage.target_kind == "dm")
        for p, a in accounts
    ]
    stopped = _changed(
        uow.session,
        update(OutboxMessage)
        .where(
            or_(*to_them),
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.DEAD]),
        )
        .values(status=OutboxStatus.SKIPPED, last_error="person deactivated"),
    )
    outcome.add("deliveries stopped", stopped)


def _revoke_invites(uow: UnitOfWork, person: Person, now: datetime, outcome: Outcome) -> None:
    revoked = _changed(
        uow.session,
        update(Invite)
        .where(Invite.created_by == person.id, Invite.revoked_at.is_(None))
        .values(revoked_at=now),
    )
    outcome.add("invites revoked", revoked)


def _withdraw_proposals(uow: UnitOfWork, person: Person, outcome: Outcome) -> None:
    """Their proposals that are not public yet are withdrawn: nothing of a forgotten person
    is approved and published afterwards (a pending card, a scheduled `--at`)."""
    waiting = (ProposalStatus.PENDING, ProposalStatus.CHANGES, ProposalStatus.APPROVED)
    withdrawn = _changed(
        uow.session,
        update(Proposal)
        .where(Proposal.author_id == person.id, Proposal.status.in_(waiting))
        .values(status=ProposalStatus.WITHDRAWN),
    )
    outcome.add("proposals withdrawn", withdrawn)


def deactivate(uow: UnitOfWork, person: Person, now: datetime) -> Outcome:
    """The person left: every linked account disabled, their invites revoked, nothing
    delivered to them any more. Their posts stay; `activate` undoes the rest."""
    if not person.active:
        raise PrivacyError(f"{person.handle} is already deactivated")
    _refuse_last_admin(uow, person)
    outcome = Outcome()
    _stop_deliveries(uow, person, outcome)
    _revoke_invites(uow, person, now, outcome)
    disabled = _changed(
        uow.session,
        update(Account).where(Account.person_id == person.id).values(reachable=False),
    )
    outcome.add("accounts disabled", disabled)
    person.active = False
    uow.audit.add(
        at=now,
        actor_id=None,
        action="person.deactivated",
        subject=person.handle,
        details={"by": OPERATOR, "person": person.id, **outcome.counts},
    )
    return outcome


def activate(uow: UnitOfWork, person: Person, now: datetime) -> None:
    if person.active:
        raise PrivacyError(f"{person.handle} is active")
    if person.handle.startswith("former-"):
        raise PrivacyError(f"{person.handle} was forgotten; a forgotten person cannot return")
    person.active = True
    _changed(
        uow.session,
        update(Account).where(Account.person_id == person.id).values(reachable=True),
    )
    uow.audit.add(
        at=now,
        actor_id=None,
        action="person.activated",
        subject=person.handle,
        details={"by": OPERATOR, "person": person.id},
    )


def _refuse_last_admin(uow: UnitOfWork, person: Person) -> None:
    if person.role == Role.ADMIN and uow.people.count_role(Role.ADMIN) <= 1:
        raise PrivacyError(f"{person.handle} is the last admin; make someone else admin first")


def set_role(
    uow: UnitOfWork,
    person: Person,
    role: Role,
    now: datetime,
    *,
    admins: frozenset[tuple[str, str]] = frozenset(),
    menus_by_role: Iterable[str] = (),
) -> str:
    """`people grant` and `people revoke`: the new role, audited; the old one returned.
    `admins`: the accounts the settings make admins (bot.access.admin_by_setting);
    `menus_by_role`: the messengers whose menus follow the role (queued the new one)."""
    from bot.access import CONSOLE_ADMIN, admin_by_setting

    if not person.active:
        raise PrivacyError(f"{person.handle} is deactivated")
    if person.role == role:
        raise PrivacyError(f"{person.handle} is already {role.value}")
    if person.role_enum.is_external and role in (Role.GATEKEEPER, Role.ADMIN):
        raise PrivacyError(
            f"{person.handle} is an external ({person.role}); make them a member first"
        )
    if person.role == Role.ADMIN:
        _refuse_last_admin(uow, person)
    listed = admin_by_setting(uow, person, admins) if role != Role.ADMIN else None
    if listed == CONSOLE_ADMIN:
        raise PrivacyError(f"{person.handle} is the console's own admin; that role stays")
    if listed is not None:
        raise PrivacyError(
            f"{person.handle} is an admin by PINWALL_ADMINS ({':'.join(listed)}); "
            "take them out of that setting first"
        )
    before = person.role
    person.role = role
    uow.audit.add(
        at=now,
        actor_id=None,
        action="role.changed",
        subject=person.handle,
        details={"by": OPERATOR, "person": person.id, "before": before, "after": role.value},
    )
    queue_role_menus(uow, person, role, menus_by_role, now)
    return before


def forget(uow: UnitOfWork, person: Person, now: datetime, *, posts: PostsPolicy) -> Outcome:
    """Erases the person's personal data (DSGVO Art. 17). Their posts and comments are
    anonymized (kept without author) or deleted, by `posts`; everything else that refers
    to them is deleted, or loses the reference where the row is someone else's (a group
    they created). The person row stays as the pseudonym `former-<id>`, so the audit
    log keeps its entries; the handle is replaced in them too."""
    _refuse_last_admin(uow, person)
    outcome = Outcome()
    handle, pseudonym = person.handle, f"former-{person.id}"
    _stop_deliveries(uow, person, outcome)
    _revoke_invites(uow, person, now, outcome)
    _withdraw_proposals(uow, person, outcome)
    s = uow.session
    accounts = s.execute(
        select(Account.platform, Account.external_id).where(Account.person_id == person.id)
    ).all()
    # What the messengers sent on their behalf, as recorded on arrival.
    for platform, external_id in accounts:
        n = _changed(
            s,
            delete(InboxEvent).where(
                InboxEvent.platform == platform,
                InboxEvent.status != InboxStatus.RECEIVED,
                cast(InboxEvent.payload, String).contains(f'"{external_id}"'),
            ),
        )
        outcome.add("received events deleted", n)

    # Files of their posts (if deleted) and of their unfinished shares.
    maybe_unused = {
        f.get("blob_id")
        for files in s.scalars(select(Draft.files).where(Draft.person_id == person.id))
        for f in files or ()
    } - {None}
    if posts == "delete":
        maybe_unused |= uow.blobs.of_items(
            s.scalars(select(Item.id).where(Item.author_id == person.id))
        )
        comment_ids = list(s.scalars(select(Comment.id).where(Comment.author_id == person.id)))
        if comment_ids:
            s.execute(
                delete(SearchDoc).where(
                    SearchDoc.kind == "comment", SearchDoc.ref_id.in_(comment_ids)
                )
            )
        # Items delete with their comments, reactions and search entries (cascades).
        outcome.add(
            "comments deleted",
            _changed(s, delete(Comment).where(Comment.author_id == person.id)),
        )
        outcome.add("posts deleted", _changed(s, delete(Item).where(Item.author_id == person.id)))
    for table, column in person_columns():
        fk = next(iter(column.foreign_keys))
        if table.name in AUTHORED:
            n = _changed(s, update(table).where(column == person.id).values({column.name: None}))
            outcome.add(f"{table.name} anonymized", n)
        elif fk.ondelete == "CASCADE" or not column.nullable or table.name in THEIRS:
            outcome.add(
                f"{table.name} deleted",
                _changed(s, delete(table).where(column == person.id)),
            )
        else:
            n = _changed(s, update(table).where(column == person.id).values({column.name: None}))
            outcome.add(f"{table.name} unlinked", n)

    s.flush()
    outcome.files = sorted(uow.blobs.unreferenced(str(b) for b in maybe_unused))
    uow.blobs.forget(outcome.files)
    outcome.add("files deleted", len(outcome.files))

    # The audit log: same entries, the pseudonym where the handle or an account was
    # ("memory:alice" of a wrong code, the account of a link request).
    exact = {handle: pseudonym}
    inside = {f"@{handle}": f"@{pseudonym}"}
    for platform, external_id in accounts:
        exact[external_id] = exact[f"{platform}:{external_id}"] = pseudonym
        inside[f"{platform}:{external_id}"] = pseudonym
    entries = s.scalars(
        select(AuditEntry).where(
            or_(
                AuditEntry.actor_id == person.id,
                *(AuditEntry.subject.contains(word) for word in exact),
                *(cast(AuditEntry.details, String).contains(word) for word in exact),
            )
        )
    ).all()
    scrubbed = 0
    for entry in entries:
        subject = _scrub(entry.subject, exact, inside)
        details = _scrub(entry.details, exact, inside)
        if subject != entry.subject or details != entry.details:
            entry.subject, entry.details = subject, details
            scrubbed += 1
    outcome.add("audit entries pseudonymized", scrubbed)

    person.handle = pseudonym
    person.display_name = pseudonym
    person.language = person.language_hint = person.timezone = None
    person.role = Role.MEMBER
    person.active = False
    s.flush()
    uow.audit.add(
        at=now,
        actor_id=None,
        action="privacy.forgotten",
        subject=pseudonym,
        details={"by": OPERATOR, "person": person.id, "posts": posts, **outcome.counts},
    )
    return outcome


def _scrub(value: Any, exact: dict[str, str], inside: dict[str, str]) -> Any:
    """`value` with every string that is one of `exact` replaced whole, and every part of
    a string that is one of `inside` replaced (never a bare account id inside a longer
    string: "12" is in many)."""
    if isinstance(value, str):
        if value in exact:
            return exact[value]
        for old, new in inside.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, exact, inside) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, exact, inside) for v in value]
    return value
