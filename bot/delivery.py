"""Who a post reaches (fan-out, at commit time) and what they see (rendering, at send time).

Item deliveries only reference the item; they are rendered when sent, in the
recipient's language and after the recipient's visibility is checked again, so a
late link preview still shows and a person removed meanwhile gets nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.i18n import Translator
from bot.markup import Markup, link
from bot.message import Button, FileRef, Message, load_message
from bot.policy import Policy
from store.models import Group, Item, OutboxMessage, Person
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

PLATFORM_NAMES = {
    "console": "Console",
    "slack": "Slack",
    "telegram": "Telegram",
    "matrix": "Matrix",
    "feed": "Feed",
}


def fan_out(
    uow: UnitOfWork,
    item: Item,
    *,
    now: datetime,
    exclude_room_id: int | None = None,
) -> int:
    """Queues the item for every bridged room and every instant member; returns the count."""
    rows: list[OutboxMessage] = []

    def add(platform: str, kind: str, address: str, person_id: int | None) -> None:
        rows.append(
            OutboxMessage(
                created_at=now,
                platform=platform,
                target_kind=kind,
                target=address,
                person_id=person_id,
                item_id=item.id,
                payload={"t": "item"},
                status="pending",
                attempts=0,
                next_attempt_at=now,
            )
        )

    for room in uow.rooms.bridged(item.group_id):
        if room.id != exclude_room_id:
            add(room.platform, "room", room.external_id, None)
    recipients = [p for p in uow.groups.instant_recipients(item.group_id) if p != item.author_id]
    for person_id, account in uow.people.preferred_accounts(recipients).items():
        add(account.platform, "dm", account.external_id, person_id)
    uow.outbox.add_all(rows)
    return len(rows)


def item_message(
    t: Translator,
    item: Item,
    group: Group,
    author: Person | None,
    *,
    target_platform: str,
    files: tuple[FileRef, ...] = (),
) -> Message:
    by = author.handle if author else PLATFORM_NAMES.get(item.source_platform or "", "Pinwall")
    if item.source_platform and item.source_platform != target_platform and author:
        by = str(
            t(
                "item.via",
                author=author.handle,
                platform=PLATFORM_NAMES.get(item.source_platform, item.source_platform),
            )
        )
    title = t("item.title", author=Markup(by), group=group.name)
    lines: list[str] = []
    text = item.text.strip()
    if text:
        lines.append(t("item.text", text=text))
    if item.url:
        label = item.title if item.title and item.title != item.url else item.url
        lines.append(link(item.url, label))
    return Message(
        title=title,
        text="\n".join(lines),
        files=files,
        buttons=(
            Button(label=t("button.comment"), action="item.comment", value=str(item.id)),
            Button(label="👍", action="item.like", value=str(item.id)),
        ),
        meta={"item": item.id},
    )


class Renderer:
    """Turns an outbox row into the message to send, or None when it must not be sent."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def render(self, uow: UnitOfWork, row: OutboxMessage) -> Message | None:
        kind = row.payload.get("t")
        if kind == "msg":
            return load_message(row.payload["m"])
        if kind == "item" and row.item_id is not None:
            return self._item(uow, row)
        return None

    def _item(self, uow: UnitOfWork, row: OutboxMessage) -> Message | None:
        item = uow.items.get(row.item_id) if row.item_id else None
        group = uow.groups.get(item.group_id) if item else None
        if item is None or group is None:
            return None
        reader = uow.people.get(row.person_id) if row.person_id else None
        if row.person_id is not None:
            # A member's copy: they must still see the group and be in it (left since?).
            if reader is None or not Policy(uow, reader).can_post(group):
                return None
        elif row.target_kind == "room":
            room = uow.rooms.find(row.platform, row.target)
            if room is None or room.group_id != group.id:
                return None  # unbridged since
        author = uow.people.get(item.author_id) if item.author_id else None
        t = self.core.translator(reader)
        files = tuple(
            FileRef(
                blob_id=blob.id,
                name=f.name,
                mime_type=blob.mime_type,
                image=blob.mime_type.startswith("image/"),
            )
            for f, blob in uow.blobs.files_of(item.id)
        )
        return item_message(t, item, group, author, target_platform=row.platform, files=files)
