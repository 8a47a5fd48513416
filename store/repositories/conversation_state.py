"""What a conversation with the bot waits for: drafts and prompts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
)

from store.models import (
    Draft,
    Prompt,
)
from store.repositories.base import Repo


class ConversationStateRepository(Repo):
    """Drafts waiting for a group, and prompts waiting for an answer."""

    def add_draft(
        self,
        person_id: int,
        text: str,
        source_platform: str,
        now: datetime,
        files: list[dict[str, Any]] | None = None,
        album: str | None = None,
    ) -> Draft:
        draft = Draft(
            person_id=person_id,
            text=text,
            files=files or [],
            source_platform=source_platform,
            created_at=now,
            album=album,
        )
        self.s.add(draft)
        self.s.flush()
        return draft

    def draft(self, draft_id: int) -> Draft | None:
        return self.s.get(Draft, draft_id)

    def album_draft(self, person_id: int, album: str) -> Draft | None:
        """The person's draft that the first file of this album started, while it waits."""
        return self.s.scalars(
            select(Draft).where(Draft.person_id == person_id, Draft.album == album).limit(1)
        ).first()

    def drop_draft(self, draft: Draft) -> None:
        self.s.delete(draft)
        self.s.flush()

    def set_prompt(
        self,
        person_id: int,
        kind: str,
        ref: int,
        now: datetime,
        data: dict[str, Any] | None = None,
    ) -> None:
        prompt = self.s.get(Prompt, person_id)
        if prompt is None:
            self.s.add(Prompt(person_id=person_id, kind=kind, ref=ref, created_at=now, data=data))
        else:
            prompt.kind, prompt.ref, prompt.created_at, prompt.data = kind, ref, now, data
        self.s.flush()

    def open_prompt(self, person_id: int) -> Prompt | None:
        """The question the person was asked, left open (not taken)."""
        return self.s.get(Prompt, person_id)

    def take_prompt(self, person_id: int) -> Prompt | None:
        prompt = self.s.get(Prompt, person_id)
        if prompt is not None:
            self.s.delete(prompt)
            self.s.flush()
        return prompt
