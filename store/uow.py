"""The unit of work: the narrow interface through which the core uses the store.

The core never writes a query; it asks a repository (store/repositories/, one module
per area). Every repository of one unit of work shares its session, so everything done
in it commits (or not) together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from sqlalchemy.orm import Session

from store import search
from store.repositories.adapter_state import (
    ButtonPromptRepository,
    CursorRepository,
    DirectChatRepository,
    UploadRepository,
)
from store.repositories.announcements import AnnouncementRepository
from store.repositories.audit import AuditRepository
from store.repositories.blobs import BlobRepository
from store.repositories.conversation_state import ConversationStateRepository
from store.repositories.digests import DigestRepository
from store.repositories.feeds import FeedRepository
from store.repositories.groups import GroupRepository
from store.repositories.inbox import InboxRepository
from store.repositories.instances import InstanceRepository
from store.repositories.invites import InviteRepository
from store.repositories.items import ItemRepository
from store.repositories.join_requests import JoinRequestRepository
from store.repositories.links import LinkCodeRepository
from store.repositories.mail import MailAddressRepository
from store.repositories.outbox import OutboxRepository
from store.repositories.people import PersonRepository
from store.repositories.proposals import ProposalRepository
from store.repositories.reads import ReadRepository
from store.repositories.rooms import RoomRepository

R = TypeVar("R")


class _Repository(Generic[R]):
    """A repository of the unit of work, made when first used: a unit of work uses a few
    of them, and making all twenty for each was a measurable part of a command."""

    def __init__(self, make: Callable[[Session], R]) -> None:
        self.make = make
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, uow: None, owner: type[Any] | None = None) -> _Repository[R]: ...

    @overload
    def __get__(self, uow: UnitOfWork, owner: type[Any] | None = None) -> R: ...

    def __get__(self, uow: UnitOfWork | None, owner: type[Any] | None = None) -> R | _Repository[R]:
        if uow is None:
            return self
        repository = uow.__dict__[self.name] = self.make(uow.session)
        return repository


class UnitOfWork:
    """Repositories over one session; `commit()` makes their changes durable together."""

    people = _Repository(PersonRepository)
    groups = _Repository(GroupRepository)
    rooms = _Repository(RoomRepository)
    items = _Repository(ItemRepository)
    invites = _Repository(InviteRepository)
    links = _Repository(LinkCodeRepository)
    state = _Repository(ConversationStateRepository)
    inbox = _Repository(InboxRepository)
    outbox = _Repository(OutboxRepository)
    audit = _Repository(AuditRepository)
    blobs = _Repository(BlobRepository)
    cursors = _Repository(CursorRepository)
    direct_chats = _Repository(DirectChatRepository)
    prompts = _Repository(ButtonPromptRepository)
    uploads = _Repository(UploadRepository)
    proposals = _Repository(ProposalRepository)
    digests = _Repository(DigestRepository)
    feeds = _Repository(FeedRepository)
    search = _Repository(search.SearchRepository)
    reads = _Repository(ReadRepository)
    join_requests = _Repository(JoinRequestRepository)
    instances = _Repository(InstanceRepository)
    announcements = _Repository(AnnouncementRepository)
    mail = _Repository(MailAddressRepository)

    def __init__(self, session: Session, *, backend: str) -> None:
        self.session = session
        self.backend = backend

    def flush(self) -> None:
        self.session.flush()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
