"""Who a post reaches (fan-out, at commit time) and what they see (rendering, at send time).

Item deliveries only reference the item; they are rendered when sent, in the
recipient's language and after the recipient's visibility is checked again, so a
late link preview still shows and a person removed meanwhile gets nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.i18n import Translator
from bot.markup import Markup, link
from bot.message import Button, FileRef, Message, load_message
from bot.policy import may_receive
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
    rows: list[dict[str, Any]] = []

    def add(platform: str, kind: str, address: str, person_id: int | None) -> None:
        rows.append(
            {
                "created_at": now,
                "platform": platform,
                "target_kind": kind,
                "target": address,
                "person_id": person_id,
                "item_id": item.id,
                "payload": {"t": "item"},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
        )

    for room in uow.rooms.bridged(item.group_id):
        if room.id != exclude_room_id:
            add(room.platform, "room", room.external_id, None)
    recipients = [p for p in uow.groups.instant_recipients(item.group_id) if p != item.author_id]
    for person_id, account in uow.people.preferred_accounts(recipients).items():
        add(account.platform, "dm", account.external_id, person_id)
    uow.outbox.insert_many(rows)  # one statement for a group of a thousand
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

    def render(
        self, uow: UnitOfWork, row: OutboxMessage, cache: dict[Any, Any] | None = None
    ) -> Message | None:
        """`cache` lives for one claimed batch: a fan-out's rows share item, group, author."""
        kind = row.payload.get("t")
        if kind == "msg":
            return load_message(row.payload["m"])
        if kind == "item" and row.item_id is not None:
            return self._item(uow, row, {} if cache is None else cache)
        return None

    def _item(self, uow: UnitOfWork, row: OutboxMessage, cache: dict[Any, Any]) -> Message | None:
        assert row.item_id is not None
        post = cache.get(("item", row.item_id))
        if post is None:
            item = uow.items.get(row.item_id)
            group = uow.groups.get(item.group_id) if item else None
            if item is None or group is None:
                return None
            author = uow.people.get(item.author_id) if item.author_id else None
            files = tuple(
                FileRef(
                    blob_id=blob.id,
                    name=f.name,
                    mime_type=blob.mime_type,
                    image=blob.mime_type.startswith("image/"),
                )
                for f, blob in uow.blobs.files_of(item.id)
            )
            post = cache[("item", row.item_id)] = (item, group, author, files)
        item, group, author, files = post
        reader = uow.people.get(row.person_id) if row.person_id else None
        if row.person_id is not None:
            # A member's copy: they must still see the group and be in it (left since?).
            membership = uow.groups.membership(row.person_id, group.id)
            if reader is None or not may_receive(reader, group, membership):
                return None
        elif row.target_kind == "room":
            room = uow.rooms.find(row.platform, row.target)
            if room is None or room.group_id != group.id:
                return None  # unbridged since
        t = self.core.translator(reader)
        key = ("message", item.id, t.language, row.platform)
        message = cache.get(key)
        if message is None:
            message = cache[key] = item_message(
                t, item, group, author, target_platform=row.platform, files=files
            )
        return message
