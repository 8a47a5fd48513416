"""Who a post reaches (fan-out, at commit time) and what they see (rendering, at send time).

Item deliveries only reference the item; they are rendered when sent, in the
recipient's language and after the recipient's visibility is checked again, so a
late link preview still shows and a person removed meanwhile gets nothing. Other
capabilities bring renderers of their own references (approval cards: the votes so
far) in the handler table (bot.handlers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from bot.authors import forgotten, mentions_of
from bot.i18n import Translator
from bot.linklabel import link_label
from bot.markup import Markup, italic, link
from bot.message import Button, FileRef, Message, load_message
from bot.policy import may_receive
from store.models import Group, Item, Person
from store.repositories.items import LIKE as ITEM_LIKE
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

PREVIEW_DESCRIPTION_MAX = 300  # of a link preview's description, in a post

# Where a post came from, as people read it: the messengers' names come from their
# descriptors (CoreSettings.platform_names); this one is the core's own (feed entries).
CORE_PLATFORM_NAMES: Mapping[str, str] = MappingProxyType({"feed": "Feed"})


def fan_out(
    uow: UnitOfWork,
    item: Item,
    *,
    now: datetime,
    exclude_room_id: int | None = None,
    hold_until: datetime | None = None,
) -> int:
    """Queues the item for every bridged room and every instant member; returns the count.
    `hold_until`: the copies wait until then (for the link preview) unless let go earlier."""
    rows: list[dict[str, Any]] = []
    payload = {"t": "item"}  # one object for all rows: stored as they are, serialized once
    due = hold_until or now

    def add(platform: str, kind: str, address: str, person_id: int | None) -> None:
        rows.append(
            {
                "created_at": now,
                "platform": platform,
                "target_kind": kind,
                "target": address,
                "person_id": person_id,
                "item_id": item.id,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": due,
            }
        )

    for room_id, platform, external_id in uow.rooms.bridged_addresses(item.group_id):
        if room_id != exclude_room_id:
            add(platform, "room", external_id, None)
    for person_id, (platform, external_id) in uow.groups.instant_accounts(item.group_id).items():
        if person_id != item.author_id:
            add(platform, "dm", external_id, person_id)
    uow.outbox.insert_many(rows)  # one statement for a group of a thousand
    return len(rows)


def refresh_cards(uow: UnitOfWork, item_id: int, platforms: Iterable[str], now: datetime) -> int:
    """Queues every card of the post the bot delivered on these messengers (those that
    edit in place) to be shown again where it is, rendered when sent ("👍 3" as it is
    then); returns how many. A card that cannot be edited any more stays as it is."""
    rows = [
        {
            "created_at": now,
            "platform": platform,
            "target_kind": kind,
            "target": target,
            "person_id": person_id,
            "item_id": item_id,
            "payload": {"t": "item", "replaces": message_id},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for message_id, platform, kind, target, person_id in uow.outbox.delivered_cards(
            item_id, platforms
        )
    ]
    uow.outbox.insert_many(rows)
    return len(rows)


def item_message(
    t: Translator,
    item: Item,
    group: Group,
    author: Person | None,
    *,
    target_platform: str,
    files: tuple[FileRef, ...] = (),
    platform_names: Mapping[str, str] = CORE_PLATFORM_NAMES,
    likes: int = 0,
) -> Message:
    """A post as a card; `likes` is shown on its 👍 button ("👍 3"), so that a like
    changes the card in place instead of adding a message."""
    if author is not None:
        by = author.handle
    elif forgotten(item.kind, item.author_id):
        by = str(t("author.former_member"))
    else:
        by = platform_names.get(item.source_platform or "", "Pinwall")
    if item.source_platform and item.source_platform != target_platform and author:
        by = str(
            t(
                "item.via",
                author=author.handle,
                platform=platform_names.get(item.source_platform, item.source_platform),
            )
        )
    title = t("item.title", author=Markup(by), group=group.name)
    lines: list[str] = []
    previewed = False
    text = item.text.strip()
    if text:
        lines.append(t("item.text", text=text))
    if item.url:
        lines.append(link(item.url, link_label(item.url, item.title)))
        # The link preview, once jobs.previews stored it (rendered at send time).
        description = " ".join((item.description or "").split())
        if description:
            if len(description) > PREVIEW_DESCRIPTION_MAX:
                description = description[: PREVIEW_DESCRIPTION_MAX - 1].rstrip() + "…"
            lines.append(t("item.text", text=description))
            previewed = True
        if item.site_name and item.site_name.strip():
            lines.append(italic(" ".join(item.site_name.split())))
    return Message(
        title=title,
        text="\n".join(lines),
        files=files,
        buttons=(
            Button(label=t("button.comment"), action="item.comment", value=str(item.id)),
            Button(label=like_label(likes), action="item.like", value=str(item.id)),
        ),
        # "preview": the card shows the link's preview itself (a messenger that would add
        # its own, Telegram, leaves it out: one preview per link); the link (a messenger
        # may offer to open it) and the author's accounts (real mentions where the
        # messenger has them).
        meta={
            "item": item.id,
            "url": item.url,
            "mentions": mentions_of(author),
            "preview": previewed,
        },
    )


LIKE = ITEM_LIKE  # 👍: what a like is, on every messenger


def like_label(likes: int) -> str:
    return f"{LIKE} {likes}" if likes > 0 else LIKE


def like_count(uow: UnitOfWork, item_id: int) -> int:
    """The post's likes: people's 👍 and those a channel gave anonymously (counted as
    every list and digest counts them: ItemRepository.reaction_counts), in one query."""
    return uow.items.likes(item_id, LIKE)


def anonymous_likes_counted(
    uow: UnitOfWork,
    platform: str,
    conversation: str,
    message_id: str,
    likes: int,
    platforms: Iterable[str],
    now: datetime,
) -> bool:
    """A messenger's total of anonymous 👍 on a copy of a post (a Telegram channel's
    message_reaction_count): kept with the copy, and the post's cards on `platforms`
    show the new count. False (nothing changed) for a message that is no post's copy or
    a total that is the same."""
    ref = uow.outbox.find_ref(platform, conversation, message_id)
    likes = max(0, likes)
    if ref is None or ref.item_id is None or ref.anonymous_likes == likes:
        return False
    ref.anonymous_likes = likes
    uow.session.flush()
    refresh_cards(uow, ref.item_id, platforms, now)
    return True


class OutboxRow(Protocol):
    """What rendering needs of an outbox message (a claimed row, or the stored one)."""

    @property
    def id(self) -> int: ...
    @property
    def platform(self) -> str: ...
    @property
    def target_kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def person_id(self) -> int | None: ...
    @property
    def item_id(self) -> int | None: ...
    @property
    def payload(self) -> dict[str, Any]: ...


# How a row that references something else is rendered when it is sent; None when it
# must not go any more. By payload kind ("t"), in the handler table (Handlers.renderers)
# of the capability that queues such rows (approval cards: "card").
RowRenderer = Callable[["Core", UnitOfWork, OutboxRow], Message | None]


class Renderer:
    """Turns an outbox row into the message to send, or None when it must not be sent."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def prepare(self, uow: UnitOfWork, rows: Sequence[OutboxRow], cache: dict[Any, Any]) -> None:
        """Loads what rendering a batch of rows needs in a few queries, into `cache`: the
        posts with their groups, authors and files, the readers, and their memberships."""
        item_ids = {
            r.item_id for r in rows if r.item_id is not None and r.payload.get("t") == "item"
        }
        for item_id in item_ids - {k[1] for k in cache if k[0] == "item"}:
            self._post(uow, item_id, cache)
        for item_id in item_ids:
            post = cache[("item", item_id)]
            if post is None:
                continue
            group_id = post[1].id
            readers = {
                r.person_id
                for r in rows
                if r.person_id is not None
                and r.item_id == item_id
                and ("membership", r.person_id, group_id) not in cache
            }
            for person_id in readers:
                cache[("reader", person_id)] = None
                cache[("membership", person_id, group_id)] = None
            for person, membership in uow.groups.people_in(group_id, readers):
                cache[("reader", person.id)] = person
                cache[("membership", person.id, group_id)] = membership

    @staticmethod
    def _bridged(uow: UnitOfWork, group_id: int) -> frozenset[tuple[str, str]]:
        """(platform, address) of the rooms bridged to the group now."""
        return frozenset((p, a) for _, p, a in uow.rooms.bridged_addresses(group_id))

    @staticmethod
    def needs_store(row: OutboxRow) -> bool:
        """Whether rendering the row reads the store (a stored message does not)."""
        return row.payload.get("t") != "msg"

    def render(
        self, uow: UnitOfWork | None, row: OutboxRow, cache: dict[Any, Any] | None = None
    ) -> Message | None:
        """`cache` lives for one claimed batch: a fan-out's rows share item, group, author.
        `uow` may be None for rows that do not need the store (see needs_store)."""
        kind = row.payload.get("t")
        if kind == "msg":
            return load_message(row.payload["m"])
        if kind == "item" and row.item_id is not None:
            if uow is None:
                raise ValueError("rendering an item needs a unit of work")
            shown = self._item(uow, row, {} if cache is None else cache)
            replaces = row.payload.get("replaces")
            if shown is not None and isinstance(replaces, str):  # a card shown again
                return replace(shown, replaces=replaces, edit_only=True)
            return shown
        other = self.core.handlers.renderers.get(kind) if isinstance(kind, str) else None
        if other is not None:
            if uow is None:
                raise ValueError(f"rendering a {kind} needs a unit of work")
            return other(self.core, uow, row)
        if kind == "item":  # its post was deleted meanwhile
            return None
        raise ValueError(f"no renderer for outbox payloads of kind {kind!r}")

    def _post(
        self, uow: UnitOfWork, item_id: int, cache: dict[Any, Any]
    ) -> tuple[Item, Group, Person | None, tuple[FileRef, ...]] | None:
        key = ("item", item_id)
        if key in cache:
            post: tuple[Item, Group, Person | None, tuple[FileRef, ...]] | None = cache[key]
            return post
        found = uow.items.to_render(item_id)
        if found is None:
            cache[key] = None
            return None
        item, group, author, file_rows = found
        files = tuple(
            FileRef(blob_id=blob_id, name=name, mime_type=mime, image=mime.startswith("image/"))
            for blob_id, name, mime in file_rows
        )
        post = cache[key] = (item, group, author, files)
        return post

    def _item(self, uow: UnitOfWork, row: OutboxRow, cache: dict[Any, Any]) -> Message | None:
        assert row.item_id is not None
        post = self._post(uow, row.item_id, cache)
        if post is None:
            return None
        item, group, author, files = post
        reader: Person | None = None
        if row.person_id is not None:
            # A member's copy: they must still see the group and be in it (left since?).
            reader_key = ("reader", row.person_id)
            if reader_key not in cache:
                cache[reader_key] = uow.people.get(row.person_id)
            reader = cache[reader_key]
            membership_key = ("membership", row.person_id, group.id)
            if membership_key not in cache:
                cache[membership_key] = uow.groups.membership(row.person_id, group.id)
            if reader is None or not may_receive(reader, group, cache[membership_key]):
                return None
        elif row.target_kind == "room":
            bridged_key = ("bridged", group.id)  # one look-up for all rooms of the batch
            if bridged_key not in cache:
                cache[bridged_key] = self._bridged(uow, group.id)
            if (row.platform, row.target) not in cache[bridged_key]:
                return None  # unbridged since
        t = self.core.translator(reader)
        key = ("message", item.id, t.language, row.platform)
        message = cache.get(key)
        if message is None:
            likes_key = ("likes", item.id)
            if likes_key not in cache:
                cache[likes_key] = like_count(uow, item.id)
            message = cache[key] = item_message(
                t,
                item,
                group,
                author,
                target_platform=row.platform,
                files=files,
                platform_names=self.core.platform_names,
                likes=cache[likes_key],
            )
        assert isinstance(message, Message)
        return message
