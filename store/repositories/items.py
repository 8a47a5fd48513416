"""Posts, their comments and reactions, and their link previews."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from store import search
from store.driver import Prebuilt
from store.models import (
    Blob,
    Comment,
    Group,
    Item,
    ItemFile,
    ItemKind,
    MessageRef,
    Person,
    PreviewStatus,
    Reaction,
    table_of,
)
from store.repositories.base import Repo

# The hot path runs prebuilt Core statements on the session's connection: SQLAlchemy
# compiles each once and then only binds parameters, with no ORM bookkeeping on the way.
_people = table_of(Person)
_items = table_of(Item)
_comments = table_of(Comment)
_reactions = table_of(Reaction)
_blobs = table_of(Blob)
_item_files = table_of(ItemFile)
_refs = table_of(MessageRef)

# The emoji a messenger's anonymous likes count as (MessageRef.anonymous_likes: a
# Telegram channel's readers' 👍, a total per copy of the post).
LIKE = "👍"


def anonymous_likes_of(item_id: Any) -> Any:
    """The 👍 given to a post's copies without a name (a channel's readers), as a
    correlated SQL expression of the post's id column."""
    return (
        select(func.coalesce(func.sum(_refs.c.anonymous_likes), 0))
        .where(_refs.c.item_id == item_id)
        .scalar_subquery()
    )


def reactions_of(item_id: Any) -> Any:
    """How many reactions a post has: people's and the anonymous likes of its copies.
    The one count every list, digest and card shows (and the digest ranks by)."""
    people = select(func.count()).where(_reactions.c.item_id == item_id).scalar_subquery()
    return people + anonymous_likes_of(item_id)


@dataclass(frozen=True, slots=True)
class ItemStats:
    comments: int
    reactions: int


@dataclass(frozen=True, slots=True)
class ItemLine:
    """A post as a list shows it: with its author's handle and how many responses."""

    id: int
    text: str
    url: str | None
    title: str | None
    dated_at: datetime  # Item.dated_at: a feed entry's own date, else when it was stored
    author_handle: str | None
    comments: int
    reactions: int
    site_name: str | None = None  # a feed entry's feed
    kind: str | None = None  # ItemKind: without an author, a feed entry's or a forgotten one's


# A post's likes: people's reactions with the emoji, and those its copies got without a
# name (a channel's readers). Prebuilt: the delivery counts them for every card it
# renders, and two ORM queries cost more than the rest of the rendering.
_LIKES = Prebuilt(
    select(
        select(func.count())
        .where(
            _reactions.c.item_id == bindparam("item_id", type_=Integer()),
            _reactions.c.emoji == bindparam("emoji", type_=String()),
        )
        .scalar_subquery()
        + select(func.coalesce(func.sum(_refs.c.anonymous_likes), 0))
        .where(_refs.c.item_id == bindparam("item_id", type_=Integer()))
        .scalar_subquery()
    )
)
# Item.dated_at, on the Core table: the newest first means by this, then by number.
_DATED = func.coalesce(_items.c.published_at, _items.c.created_at)

_ITEM_LINES = Prebuilt(
    select(
        _items.c.id,
        _items.c.text,
        _items.c.url,
        _items.c.title,
        _DATED,
        _people.c.handle,
        select(func.count())
        .where(_comments.c.item_id == _items.c.id)
        .correlate(_items)
        .scalar_subquery(),
        reactions_of(_items.c.id),
        _items.c.site_name,
        _items.c.kind,
    )
    .select_from(_items)
    .outerjoin(_people, _people.c.id == _items.c.author_id)
    .where(_items.c.group_id == bindparam("group_id"))
    .order_by(_DATED.desc(), _items.c.id.desc())
    .limit(bindparam("limit", type_=Integer()))
)


def _claim_of(attempt: int) -> PreviewStatus:
    """The preview status that holds the claim of a link preview's first or second try."""
    return PreviewStatus.FETCHING if attempt == 1 else PreviewStatus.REFETCHING


# A post with its group, its author (outer: a feed's has none) and its files (blob id,
# name, MIME type), one row each (or one row of NULLs).
_ITEM_GROUP_AUTHOR_FILES = (
    select(Item, Group, Person, _blobs.c.id, _item_files.c.name, _blobs.c.mime_type)
    .join(Group, Group.id == Item.group_id)
    .outerjoin(Person, Person.id == Item.author_id)
    .outerjoin(_item_files, _item_files.c.item_id == Item.id)
    .outerjoin(_blobs, _blobs.c.id == _item_files.c.blob_id)
    .where(Item.id == bindparam("item_id"))
    .order_by(_item_files.c.position)
)


class ItemRepository(Repo):
    def get(self, item_id: int) -> Item | None:
        return self.s.get(Item, item_id)

    def add(self, item: Item) -> Item:
        """A new post, findable by search from the same transaction on."""
        self._add_now(item)
        search.index_item(self.s, item)
        return item

    def to_render(
        self, item_id: int
    ) -> tuple[Item, Group, Person | None, list[tuple[str, str, str]]] | None:
        """A post with its group, its author (None for a feed's) and (blob id, name, MIME
        type) of its files in order: what sending it needs, in one query."""
        rows = self.s.execute(_ITEM_GROUP_AUTHOR_FILES, {"item_id": item_id}).all()
        if not rows:
            return None
        item, group, author = rows[0][0], rows[0][1], rows[0][2]
        return item, group, author, [(b, n, m) for *_, b, n, m in rows if b is not None]

    def lines(self, group_id: int, limit: int) -> list[ItemLine]:
        """The newest posts of a group with their authors and counts, in one query."""
        return [
            ItemLine(*row)
            for row in _ITEM_LINES.all(
                self._flushed_connection(), {"group_id": group_id, "limit": limit}
            )
        ]

    def newest(self, group_id: int, limit: int) -> Sequence[Item]:
        return self.s.scalars(
            select(Item)
            .where(Item.group_id == group_id)
            .order_by(Item.dated_at.desc(), Item.id.desc())
            .limit(limit)
        ).all()

    def newest_in(self, group_ids: Sequence[int], limit: int) -> Sequence[Item]:
        """The newest posts across several groups (a person's home)."""
        if not group_ids:
            return []
        return self.s.scalars(
            select(Item)
            .where(Item.group_id.in_(group_ids))
            .order_by(Item.dated_at.desc(), Item.id.desc())
            .limit(limit)
        ).all()

    def stats(self, item_ids: Iterable[int]) -> dict[int, ItemStats]:
        ids = list(item_ids)
        if not ids:
            return {}
        comments = dict(
            self.s.execute(
                select(Comment.item_id, func.count())
                .where(Comment.item_id.in_(ids))
                .group_by(Comment.item_id)
            ).all()
        )
        reactions: dict[int, int] = dict(
            self.s.execute(
                select(_items.c.id, reactions_of(_items.c.id)).where(_items.c.id.in_(ids))
            ).all()
        )
        return {i: ItemStats(comments.get(i, 0), int(reactions.get(i) or 0)) for i in ids}

    def add_comment(self, comment: Comment) -> Comment:
        self.s.add(comment)
        self.s.flush()
        item = self.s.get(Item, comment.item_id)
        if item is not None:
            search.index_comment(self.s, comment, item.group_id)
        return comment

    def comments(self, item_id: int) -> Sequence[Comment]:
        return self.s.scalars(
            select(Comment).where(Comment.item_id == item_id).order_by(Comment.id)
        ).all()

    def reaction(self, item_id: int, person_id: int, emoji: str) -> Reaction | None:
        return self.s.scalar(
            select(Reaction).where(
                Reaction.item_id == item_id,
                Reaction.person_id == person_id,
                Reaction.emoji == emoji,
            )
        )

    def add_reaction(self, item_id: int, person_id: int, emoji: str, now: datetime) -> bool:
        """Adds the reaction; False when it was already there."""
        if self.reaction(item_id, person_id, emoji) is not None:
            return False
        self.s.add(Reaction(item_id=item_id, person_id=person_id, emoji=emoji, created_at=now))
        self.s.flush()
        return True

    def remove_reaction(self, reaction: Reaction) -> None:
        self.s.delete(reaction)
        self.s.flush()

    def likes(self, item_id: int, emoji: str) -> int:
        """The post's reactions with this emoji plus the anonymous ones of its copies."""
        return int(_LIKES.scalar(self._flushed_connection(), {"item_id": item_id, "emoji": emoji}))

    def reaction_counts(self, item_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
        """Each post's reactions, counted per emoji, the anonymous likes of its copies
        among the 👍: the most given first, then the first given (👍 3, 🎉 1)."""
        ids = list(item_ids)
        if not ids:
            return {}
        rows = self.s.execute(
            select(Reaction.item_id, Reaction.emoji, func.count(), func.min(Reaction.id))
            .where(Reaction.item_id.in_(ids))
            .group_by(Reaction.item_id, Reaction.emoji)
        ).all()
        anonymous = self.s.execute(
            select(_refs.c.item_id, func.sum(_refs.c.anonymous_likes))
            .where(_refs.c.item_id.in_(ids), _refs.c.anonymous_likes > 0)
            .group_by(_refs.c.item_id)
        ).all()
        found: dict[int, dict[str, list[int]]] = {}  # item -> emoji -> [count, first id]
        for item_id, emoji, count, first in rows:
            found.setdefault(item_id, {})[emoji] = [int(count), int(first)]
        for item_id, likes in anonymous:
            like = found.setdefault(item_id, {}).setdefault(LIKE, [0, 0])  # given first
            like[0] += int(likes or 0)
        return {
            item_id: [
                (emoji, count)
                for emoji, (count, _first) in sorted(per.items(), key=lambda e: (-e[1][0], e[1][1]))
            ]
            for item_id, per in found.items()
        }

    # --- link previews (jobs.previews) ---------------------------------------------

    def claim_previews(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[int, str, int]]:
        """Links whose preview is due, claimed until `now + lease`: (id, url, try 1 or 2).

        Due: never tried; a retry whose time has come; a claim that ran out (its process
        died), which counts as a failed try. Claims are conditional updates, so two
        instances never fetch the same link.
        """
        status = Item.preview_status
        due = self.s.execute(
            select(Item.id, Item.url, status)
            .where(
                Item.kind == ItemKind.LINK,
                or_(
                    status.is_(None),
                    and_(
                        status.in_(
                            [
                                PreviewStatus.RETRY,
                                PreviewStatus.FETCHING,
                                PreviewStatus.REFETCHING,
                            ]
                        ),
                        Item.preview_at <= now,
                    ),
                ),
            )
            .order_by(Item.id)
            .limit(limit)
        ).all()
        claimed: list[tuple[int, str, int]] = []
        for item_id, url, was in due:
            attempt = 1 if was is None else 2
            if was == PreviewStatus.REFETCHING or not url:
                new, until = PreviewStatus.FAILED, now  # the second try never came back
            elif attempt == 1:
                new, until = PreviewStatus.FETCHING, now + lease
            else:
                new, until = PreviewStatus.REFETCHING, now + lease
            taken = self._set_preview(item_id, was, preview_status=new, preview_at=until)
            if taken and url and new != PreviewStatus.FAILED:
                claimed.append((item_id, url, attempt))
        return claimed

    def store_preview(
        self,
        item_id: int,
        attempt: int,
        now: datetime,
        *,
        title: str | None,
        description: str | None,
        image_url: str | None,
        site_name: str | None,
        canonical_url: str | None,
    ) -> bool:
        """Stores a fetched preview while the claim of `attempt` holds; a title of None
        leaves the URL as the title."""
        values: dict[str, Any] = {
            "description": description,
            "image_url": image_url,
            "site_name": site_name,
            "canonical_url": canonical_url,
            "preview_status": PreviewStatus.DONE,
            "preview_at": now,
        }
        if title:
            values["title"] = title
        stored = self._set_preview(item_id, _claim_of(attempt), **values)
        if stored and (item := self.s.get(Item, item_id)) is not None:
            search.index_item(self.s, item, update=True)  # the preview's words are findable
        return stored

    def preview_failed(
        self, item_id: int, attempt: int, now: datetime, retry_at: datetime | None
    ) -> bool:
        """A try failed: another at `retry_at`, or (None) the post keeps its URL as title."""
        if retry_at is None:
            return self._set_preview(
                item_id, _claim_of(attempt), preview_status=PreviewStatus.FAILED, preview_at=now
            )
        return self._set_preview(
            item_id, _claim_of(attempt), preview_status=PreviewStatus.RETRY, preview_at=retry_at
        )

    def release_preview(self, item_id: int, attempt: int, now: datetime) -> bool:
        """Gives a claim back untried (shutting down): due again at once."""
        back = None if attempt == 1 else PreviewStatus.RETRY
        return self._set_preview(item_id, _claim_of(attempt), preview_status=back, preview_at=now)

    def _set_preview(self, item_id: int, expected: str | None, **values: Any) -> bool:
        status = _items.c.preview_status
        result = self._run(
            update(_items)
            .where(
                _items.c.id == item_id,
                status.is_(None) if expected is None else status == expected,
            )
            .values(**values)
        )
        self._expire(Item, [item_id])
        return result.rowcount == 1
