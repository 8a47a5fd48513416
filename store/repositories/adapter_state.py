"""What adapters keep across restarts: cursors, direct chats, button prompts, uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    select,
)

from store.models import (
    ButtonPrompt,
    Cursor,
    DirectChat,
    Upload,
)
from store.repositories.base import Repo


class CursorRepository(Repo):
    """Named positions and flags adapters keep across restarts (a sync token)."""

    def get(self, name: str) -> str | None:
        row = self.s.get(Cursor, name)
        return row.value if row is not None else None

    def set(self, name: str, value: str, now: datetime) -> None:
        row = self.s.get(Cursor, name)
        if row is None:
            self.s.add(Cursor(name=name, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now
        self.s.flush()

    def delete(self, name: str) -> None:
        self.s.execute(delete(Cursor).where(Cursor.name == name))


class DirectChatRepository(Repo):
    """Which platform conversations are direct chats with one person."""

    def add(self, platform: str, conversation: str, address: str, now: datetime) -> None:
        row = self.s.get(DirectChat, (platform, conversation))
        if row is None:
            self.s.add(
                DirectChat(
                    platform=platform, conversation=conversation, address=address, created_at=now
                )
            )
        else:
            row.address = address
        self.s.flush()

    def find(self, platform: str, conversation: str) -> DirectChat | None:
        return self.s.get(DirectChat, (platform, conversation))

    def newest_for(self, platform: str, address: str) -> str | None:
        """The conversation a direct message to this person goes to."""
        return self.s.scalar(
            select(DirectChat.conversation)
            .where(DirectChat.platform == platform, DirectChat.address == address)
            .order_by(DirectChat.created_at.desc())
            .limit(1)
        )

    def drop(self, platform: str, conversation: str) -> None:
        self.s.execute(
            delete(DirectChat).where(
                DirectChat.platform == platform, DirectChat.conversation == conversation
            )
        )


class ButtonPromptRepository(Repo):
    """The buttons of sent messages on platforms that show them as reactions or numbers."""

    def add(
        self,
        *,
        platform: str,
        conversation: str,
        message_id: str,
        buttons: list[dict[str, Any]],
        post: bool,
        now: datetime,
    ) -> None:
        row = self.get(platform, conversation, message_id)
        if row is None:
            self.s.add(
                ButtonPrompt(
                    platform=platform,
                    conversation=conversation,
                    message_id=message_id,
                    buttons=buttons,
                    post=post,
                    created_at=now,
                )
            )
        else:
            row.buttons, row.post = buttons, post
        self.s.flush()

    def get(self, platform: str, conversation: str, message_id: str) -> ButtonPrompt | None:
        return self.s.scalar(
            select(ButtonPrompt).where(
                ButtonPrompt.platform == platform,
                ButtonPrompt.conversation == conversation,
                ButtonPrompt.message_id == message_id,
            )
        )

    def newest(self, platform: str, conversation: str) -> ButtonPrompt | None:
        return self.s.scalar(
            select(ButtonPrompt)
            .where(ButtonPrompt.platform == platform, ButtonPrompt.conversation == conversation)
            .order_by(ButtonPrompt.id.desc())
            .limit(1)
        )

    def drop(self, prompt: ButtonPrompt) -> None:
        self.s.delete(prompt)
        self.s.flush()

    def prune(self, platform: str, before: datetime) -> int:
        result = self.s.execute(
            delete(ButtonPrompt).where(
                ButtonPrompt.platform == platform, ButtonPrompt.created_at < before
            )
        )
        return int(getattr(result, "rowcount", 0))


class UploadRepository(Repo):
    """Files already uploaded to a messenger's server, by blob: uploaded once, reused."""

    def uri(self, platform: str, server: str, blob_id: str) -> str | None:
        row = self.s.get(Upload, (platform, server, blob_id))
        return row.uri if row is not None else None

    def remember(self, platform: str, server: str, blob_id: str, uri: str, now: datetime) -> None:
        row = self.s.get(Upload, (platform, server, blob_id))
        if row is None:
            self.s.add(
                Upload(platform=platform, server=server, blob_id=blob_id, uri=uri, created_at=now)
            )
        else:
            row.uri = uri
        self.s.flush()
