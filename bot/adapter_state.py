"""What messenger adapters keep in the store besides their events: cursors (a sync
token, a device id), the buttons of messages shown as reactions or numbers, direct
chats the bot opened, files uploaded once.

Adapters reach it as `hub.state`; each method runs off the event loop, on the hub's
database thread, in a transaction of its own (adapters never open a unit of work).
What must be written with a batch of events (the cursor past it) goes to
`Hub.record_batch` as a `BatchChange` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core import Core
from bot.message import Message, Target
from store.models import ButtonPrompt
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.runtime import DatabaseThreads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetCursor:
    """A named position an adapter keeps across restarts (Matrix's sync token)."""

    name: str
    value: str


@dataclass(frozen=True)
class TellOnce:
    """A notice (catalog `key`) that a conversation gets once ever; `mark` remembers that
    it went. In the language of `reader` (an account on the target's platform) where
    Pinwall knows that person, else in the default language."""

    mark: str
    target: Target
    key: str
    reader: str | None = None


@dataclass(frozen=True)
class ForgetDirectChat:
    """The conversation is no direct chat with anyone any more (the person left it, or
    someone else is in it too)."""

    platform: str
    conversation: str


# What Hub.record_batch writes in the transaction that records a batch's events.
BatchChange = SetCursor | TellOnce | ForgetDirectChat


def write_change(core: Core, uow: UnitOfWork, change: BatchChange, now: datetime) -> bool:
    """Writes one change in `uow`; True where it put a message in the outbox."""
    match change:
        case SetCursor(name=name, value=value):
            uow.cursors.set(name, value, now)
        case TellOnce():
            return _tell_once(core, uow, change, now)
        case ForgetDirectChat(platform=platform, conversation=conversation):
            uow.direct_chats.drop(platform, conversation)
    return False


def _tell_once(core: Core, uow: UnitOfWork, notice: TellOnce, now: datetime) -> bool:
    if uow.cursors.get(notice.mark) is not None:
        return False
    target = notice.target
    person = None
    if notice.reader is not None:
        account = uow.people.account(target.platform, notice.reader)
        person = uow.people.get(account.person_id) if account else None
    text = core.translator(person)(notice.key)
    core.enqueue(uow, target, Message(text=text), person.id if person else None, now)
    uow.cursors.set(notice.mark, now.isoformat(), now)
    log.info("%s: told %s once (%s)", target.platform, target.address, notice.key)
    return True


@dataclass(frozen=True)
class ButtonPromptView:
    """The buttons of a message the bot sent, as a platform without buttons showed them
    (reactions, numbers): what a reaction or a number there presses."""

    conversation: str
    message_id: str
    buttons: list[dict[str, Any]]
    post: bool  # a relayed post (its 👍 is a reaction to count, not a press)

    @staticmethod
    def of(row: ButtonPrompt | None) -> ButtonPromptView | None:
        if row is None:
            return None
        return ButtonPromptView(row.conversation, row.message_id, list(row.buttons), row.post)


class AdapterState:
    def __init__(self, core: Core, threads: DatabaseThreads) -> None:
        self.core = core
        self.db = core.db
        self.clock = core.clock
        self._run = threads.call  # off the event loop, as Hub.call

    # --- cursors ----------------------------------------------------------------------

    async def cursor(self, name: str) -> str | None:
        """A named position or flag an adapter kept (set_cursor, SetCursor)."""
        return await self._run(self._cursor, name)

    def _cursor(self, name: str) -> str | None:
        with self.db.uow() as uow:
            return uow.cursors.get(name)

    async def set_cursor(self, name: str, value: str, *, keep: bool = False) -> str:
        """Stores a named value; with `keep` only where there is none yet. Returns the
        value stored now (with `keep`, maybe the earlier one)."""
        return await self._run(self._set_cursor, name, value, keep)

    def _set_cursor(self, name: str, value: str, keep: bool) -> str:
        with self.db.uow() as uow:
            stored = uow.cursors.get(name) if keep else None
            if stored is not None:
                return stored
            uow.cursors.set(name, value, self.clock.now())
            uow.commit()
            return value

    # --- people -------------------------------------------------------------------------

    async def is_person(self, platform: str, external_id: str) -> bool:
        """The account belongs to a person of this Pinwall (active), or to an admin."""
        if (platform, external_id) in self.core.settings.admins:
            return True
        return await self._run(self._is_person, platform, external_id)

    def _is_person(self, platform: str, external_id: str) -> bool:
        with self.db.uow() as uow:
            account = uow.people.account(platform, external_id)
            person = uow.people.get(account.person_id) if account else None
            return person is not None and person.active

    async def language_of(self, platform: str, external_id: str) -> str | None:
        """The language Pinwall speaks with the account's person (chosen, or given by the
        messenger); None for someone it does not know."""
        return await self._run(self._language_of, platform, external_id)

    def _language_of(self, platform: str, external_id: str) -> str | None:
        with self.db.uow() as uow:
            account = uow.people.account(platform, external_id)
            person = uow.people.get(account.person_id) if account else None
            return self.core.language_of(person) if person is not None else None

    # --- buttons shown as reactions or numbers ------------------------------------------

    async def button_prompt(
        self, platform: str, conversation: str, message_id: str
    ) -> ButtonPromptView | None:
        return await self._run(self._button_prompt, platform, conversation, message_id)

    def _button_prompt(
        self, platform: str, conversation: str, message_id: str
    ) -> ButtonPromptView | None:
        with self.db.uow() as uow:
            return ButtonPromptView.of(uow.prompts.get(platform, conversation, message_id))

    async def newest_button_prompt(
        self, platform: str, conversation: str
    ) -> ButtonPromptView | None:
        """The newest message with buttons that the bot sent to the conversation."""
        return await self._run(self._newest_button_prompt, platform, conversation)

    def _newest_button_prompt(self, platform: str, conversation: str) -> ButtonPromptView | None:
        with self.db.uow() as uow:
            return ButtonPromptView.of(uow.prompts.newest(platform, conversation))

    async def save_button_prompt(self, platform: str, prompt: ButtonPromptView) -> None:
        """Keeps (or replaces) what the reactions or numbers under a message press."""
        await self._run(self._save_button_prompt, platform, prompt)

    def _save_button_prompt(self, platform: str, prompt: ButtonPromptView) -> None:
        with self.db.uow() as uow:
            uow.prompts.add(
                platform=platform,
                conversation=prompt.conversation,
                message_id=prompt.message_id,
                buttons=prompt.buttons,
                post=prompt.post,
                now=self.clock.now(),
            )
            uow.commit()

    async def drop_button_prompt(self, platform: str, conversation: str, message_id: str) -> None:
        await self._run(self._drop_button_prompt, platform, conversation, message_id)

    def _drop_button_prompt(self, platform: str, conversation: str, message_id: str) -> None:
        with self.db.uow() as uow:
            prompt = uow.prompts.get(platform, conversation, message_id)
            if prompt is not None:
                uow.prompts.drop(prompt)
            uow.commit()

    async def prune_button_prompts(self, platform: str, older_than: timedelta) -> None:
        await self._run(self._prune_button_prompts, platform, older_than)

    def _prune_button_prompts(self, platform: str, older_than: timedelta) -> None:
        with self.db.uow() as uow:
            uow.prompts.prune(platform, self.clock.now() - older_than)
            uow.commit()

    # --- direct chats -------------------------------------------------------------------

    async def direct_chats(self, platform: str, conversations: Sequence[str]) -> dict[str, str]:
        """Which of these conversations are direct chats, and with whom."""
        return await self._run(self._direct_chats, platform, list(conversations))

    def _direct_chats(self, platform: str, conversations: list[str]) -> dict[str, str]:
        with self.db.uow() as uow:
            found = {}
            for conversation in conversations:
                row = uow.direct_chats.find(platform, conversation)
                if row is not None:
                    found[conversation] = row.address
            return found

    async def newest_direct_chat(self, platform: str, address: str) -> str | None:
        """The conversation a direct message to this person goes to."""
        return await self._run(self._newest_direct_chat, platform, address)

    def _newest_direct_chat(self, platform: str, address: str) -> str | None:
        with self.db.uow() as uow:
            return uow.direct_chats.newest_for(platform, address)

    async def forget_direct_chat(self, platform: str, conversation: str) -> None:
        """The conversation is no direct chat any more (someone else is in it too)."""
        await self._run(self._forget_direct_chat, platform, conversation)

    def _forget_direct_chat(self, platform: str, conversation: str) -> None:
        with self.db.uow() as uow:
            uow.direct_chats.drop(platform, conversation)
            uow.commit()

    async def add_direct_chat(self, platform: str, conversation: str, address: str) -> None:
        await self._run(self._add_direct_chat, platform, conversation, address)

    def _add_direct_chat(self, platform: str, conversation: str, address: str) -> None:
        with self.db.uow() as uow:
            uow.direct_chats.add(platform, conversation, address, self.clock.now())
            uow.commit()

    # --- files uploaded to a messenger ----------------------------------------------------

    async def uploaded(self, platform: str, server: str, blob_id: str) -> str | None:
        """Where a file went when it was uploaded to this server before."""
        return await self._run(self._uploaded, platform, server, blob_id)

    def _uploaded(self, platform: str, server: str, blob_id: str) -> str | None:
        with self.db.uow() as uow:
            return uow.uploads.uri(platform, server, blob_id)

    async def remember_upload(self, platform: str, server: str, blob_id: str, uri: str) -> None:
        await self._run(self._remember_upload, platform, server, blob_id, uri)

    def _remember_upload(self, platform: str, server: str, blob_id: str, uri: str) -> None:
        with self.db.uow() as uow:
            uow.uploads.remember(platform, server, blob_id, uri, self.clock.now())
            uow.commit()
