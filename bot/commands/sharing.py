"""Posts: share, items, comment; plain messages (the share flow, bridged rooms),
buttons and reactions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot import announcements, grammar, guide
from bot.authors import author_label, mentions_of
from bot.core import Ctx
from bot.delivery import LIKE, fan_out, refresh_cards
from bot.errors import UserError
from bot.events import (
    ButtonPressed,
    CommandInvoked,
    InboundFile,
    MessageReceived,
    MessageRefIn,
    ReactionAdded,
    ReactionRemoved,
)
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import parse_id, show_id
from bot.linklabel import link_label
from bot.markup import Markup, link
from bot.message import Button, Message, Target
from bot.policy import may_read
from bot.show import may_propose, one_line, post_message
from store.blobs import StoredBlob
from store.models import Comment, Group, Item, ItemKind, Prompt, Room

URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
MAX_TEXT = 8000
ITEMS_DEFAULT, ITEMS_MAX = 10, 50


def split_content(content: str) -> tuple[str | None, str]:
    """The first URL in a share, and the text around it."""
    m = URL.search(content)
    if m is None:
        return None, content.strip()
    url = m.group(0).rstrip(".,;:!?)")
    text = (content[: m.start()] + content[m.start() + len(url) :]).strip()
    return url, re.sub(r"[ \t]{2,}", " ", text)


def file_dicts(files: Sequence[InboundFile]) -> list[dict[str, Any]]:
    """The files an adapter stored, as a post keeps them; a file it had to refuse
    (too large, not downloadable) stops the share with an answer that says why."""
    for f in files:
        if f.refused == "too_large":
            raise UserError(
                "error.file_too_large", name=f.name, max=f"{(f.limit or 0) // (1024 * 1024)} MB"
            )
        if f.refused is not None:
            raise UserError("error.file_unavailable", name=f.name)
    return [
        {"blob_id": f.blob_id, "name": f.name, "mime_type": f.mime_type, "size": f.size}
        for f in files
    ]


def post(
    ctx: Ctx,
    group: Group,
    content: str,
    *,
    room: Room | None = None,
    files: Sequence[dict[str, Any]] = (),
    message_id: str | None = None,
) -> Item:
    """Creates a post of the group and queues it for everyone it reaches.

    `files` were stored in the blob store by the adapter; `message_id` is the message
    the post came from in `room`, so that replies to it there become comments.
    """
    if len(content) > MAX_TEXT:
        raise UserError("error.text_too_long", max=MAX_TEXT)
    url, text = split_content(content)
    kind = ItemKind.LINK if url else ItemKind.FILE if files else ItemKind.NOTE
    item = ctx.uow.items.add(
        Item(
            group_id=group.id,
            author_id=ctx.person.id,
            kind=kind,
            text=text,
            url=url,
            title=url,  # until a preview says better
            source_platform=ctx.platform,
            source_room_id=room.id if room else None,
            created_at=ctx.now,
        )
    )
    if files:
        for f in files:
            ctx.uow.blobs.record(
                StoredBlob(
                    f["blob_id"],
                    int(f.get("size") or 0),
                    f.get("mime_type") or "application/octet-stream",
                ),
                ctx.now,
            )
        ctx.uow.blobs.attach(item.id, [(f["blob_id"], f["name"]) for f in files])
    if room is not None and message_id:
        ctx.uow.outbox.add_ref(
            platform=ctx.platform,
            conversation=room.external_id,
            message_id=message_id,
            item_id=item.id,
            outbox_id=None,
            now=ctx.now,
        )
    # A link's copies wait a moment for its preview, so that live copies show it too.
    wait = ctx.core.settings.preview_wait if kind == ItemKind.LINK else 0.0
    fan_out(
        ctx.uow,
        item,
        now=ctx.now,
        exclude_room_id=room.id if room else None,
        hold_until=ctx.now + timedelta(seconds=wait) if wait > 0 else None,
    )
    return item


def on_share(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.group(cmd.arg("group"))
    ctx.policy.require_post(group)
    room = ctx.room()
    attachments = ctx.event.attachments if isinstance(ctx.event, CommandInvoked) else ()
    item = post(
        ctx,
        group,
        str(cmd.arg("content")),
        room=room if room and room.group_id == group.id else None,
        files=file_dicts(attachments),
    )
    ctx.reply("share.done", item=show_id(item.id, "item"), group=group.name)


PINNED_MAX = 3  # announcements pinned on top of `items`
PINNED_WINDOW = 200  # how far back among the newest posts they are looked for


def on_items(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.readable_group(cmd.arg("group"))
    limit = min(cmd.arg("n") or ITEMS_DEFAULT, ITEMS_MAX)
    # Announcements that have not expired come first (pinned), then the newest posts.
    since = ctx.now - announcements.PIN_DEFAULT
    pinned = set(ctx.uow.announcements.pinned_items(group.id, since, ctx.now)[:PINNED_MAX])
    items = ctx.uow.items.lines(group.id, max(limit, 1) + (PINNED_WINDOW if pinned else 0))
    if pinned:
        items = [i for i in items if i.id in pinned] + [i for i in items if i.id not in pinned][
            : max(limit, 1)
        ]
    if not items:
        ctx.reply("items.none", group=group.name)
        return
    readers: dict[int, int] = {}
    if ctx.core.settings.read_tracking:  # off: nothing recorded, nothing shown (issue 9)
        ctx.uow.reads.record(ctx.person.id, [item.id for item in items], ctx.now)
        readers = ctx.uow.reads.counts([item.id for item in items])
    tz = ctx.core.timezone_of(ctx.person)
    per_emoji = ctx.uow.items.reaction_counts(item.id for item in items if item.reactions)
    lines: list[str] = [ctx.t("items.header", group=group.name, count=len(items))]
    # Announcements to everyone the reader got, still pinned: on top of every group's list.
    lines += [
        ctx.t("announce.digest_line", ref=show_id(a_id, "announcement"), text=one_line(text))
        for a_id, text in ctx.uow.announcements.pinned_to_everyone(
            ctx.person.id, since, ctx.now, PINNED_MAX
        )
    ]
    for item in items:
        label = link_label(item.url, item.title) if item.url else item.title
        summary = one_line(item.text) or one_line(label or "")
        if item.id in pinned:
            summary = "📌 " + summary
        lines.append(
            ctx.t(
                "items.line" if item.author_handle else "items.line_feed",
                item=show_id(item.id, "item"),
                author=item.author_handle
                or (
                    author_label(ctx.t, None)
                    if item.kind != ItemKind.FEED_ENTRY
                    else item.site_name or "Feed"
                ),
                when=ctx.t.datetime(item.dated_at, tz),
                text=summary,
            )
        )
        if item.url:
            lines.append(Markup("  ") + link(item.url, label))
        read_by = readers.get(item.id, 0)
        if not (read_by or item.comments or item.reactions):
            continue  # no stats line: nothing to count (most posts of a list)
        stats = {"comments": item.comments, "reactions": reaction_counts(ctx, per_emoji, item.id)}
        if read_by:
            lines.append(Markup("  ") + ctx.t("items.stats_read", **stats, readers=read_by))
        else:
            lines.append(Markup("  ") + ctx.t("items.stats", **stats))
    ctx.reply_markup(Markup("\n".join(lines)))


def reaction_counts(ctx: Ctx, per_emoji: dict[int, list[tuple[str, int]]], item_id: int) -> Markup:
    """A post's reactions, each as itself with its count: "👍 3 · 🎉 1" ("👍 0": none)."""
    counts = per_emoji.get(item_id) or [(LIKE, 0)]
    return Markup(" · ".join(ctx.t("items.reaction", emoji=e, count=n) for e, n in counts))


def add_comment(ctx: Ctx, item: Item, group: Group, text: str) -> None:
    text = text.strip()
    if not text:
        raise UserError("error.empty_comment", usage_of="comment")
    if len(text) > MAX_TEXT:
        raise UserError("error.text_too_long", max=MAX_TEXT)
    ctx.uow.items.add_comment(
        Comment(
            item_id=item.id,
            author_id=ctx.person.id,
            text=text,
            source_platform=ctx.platform,
            created_at=ctx.now,
        )
    )
    ctx.reply_message(
        Message(text=ctx.t("comment.done", item=show_id(item.id, "item")), meta=_ack(ctx))
    )
    _relay_comment(ctx, item, text)
    author = ctx.uow.people.get(item.author_id) if item.author_id else None
    if (
        author is not None
        and author.id != ctx.person.id
        # The author may have lost sight of the group since (removed, or never allowed).
        and may_read(author, group, ctx.uow.groups.membership(author.id, group.id))
    ):
        told = ctx.core.translator(author)(
            "comment.told",
            handle=ctx.person.handle,
            item=show_id(item.id, "item"),
            group=group.name,
            text=text[:500],
        )
        # "comment_on": by mail, a reply to this notice comments on the post
        meta = {"mentions": mentions_of(ctx.person), "comment_on": item.id}
        ctx.core.send_to_person(ctx.uow, author, Message(text=told, meta=meta), ctx.now)


ACK = "✅"


def _ack(ctx: Ctx) -> dict[str, Any]:
    """For a comment that is a message of its own (a thread answer, a reply): "ack" says
    which, so that a messenger that can react to it says "saved" with a ✅ under it
    instead of a message (Matrix, Slack; Telegram with 👌, its nearest standard reaction);
    the others, and one whose reaction fails, show the text."""
    said = ctx.event
    if not isinstance(said, MessageReceived) or said.intent != "message" or not said.message_id:
        return {}
    where = said.meta.conversation.external_id
    return {"ack": {"conversation": where, "message_id": said.message_id, "emoji": ACK}}


def _relay_comment(ctx: Ctx, item: Item, text: str) -> None:
    """Shows the comment threaded under every room copy of the post, but where it was said
    (typed into a form with a press, it was said nowhere: every copy shows it)."""
    said_in = isinstance(ctx.event, MessageReceived)
    here = (ctx.platform, ctx.event.meta.conversation.external_id) if said_in else None
    t = ctx.core.translator(None)  # rooms speak the default language
    body = t("comment.relayed", handle=ctx.person.handle, item=show_id(item.id, "item"), text=text)
    seen: set[tuple[str, str]] = set()
    for ref in ctx.uow.outbox.room_copies(item.id):
        where = (ref.platform, ref.conversation)
        if where == here or where in seen:
            continue
        seen.add(where)
        ctx.core.enqueue(
            ctx.uow,
            Target(ref.platform, "room", ref.conversation),
            Message(
                text=body,
                thread=ref.message_id,
                meta={"comment": item.id, "mentions": mentions_of(ctx.person)},
            ),
            None,
            ctx.now,
        )


def on_comment(ctx: Ctx, cmd: Command) -> None:
    item, group = ctx.policy.item(parse_id(str(cmd.arg("item")), "item"))
    add_comment(ctx, item, group, str(cmd.arg("text")))


# --- plain messages -------------------------------------------------------------------


def on_plain_message(ctx: Ctx, event: MessageReceived) -> None:
    text = event.text.strip()
    if event.intent == "share":
        _start_share_flow(ctx, text, file_dicts(event.attachments))
        return
    if event.meta.conversation.direct:
        if event.reply_to is not None and _comment_by_reply(ctx, event, text):
            return
        word = grammar.first_word(text)
        if word in grammar.COMMAND_NAMES:
            ctx.core.run_command(ctx, word, text[len(word) :])
            return
        if event.attachments or URL.search(text) or guide.is_note(text):
            _start_share_flow(ctx, text, file_dicts(event.attachments), album=event.album)
        elif text:  # thanks, a greeting, a word: one friendly line, never a share prompt
            guide.small_talk(ctx, text)
        return
    _on_room_message(ctx, event, text)


def _comment_by_reply(ctx: Ctx, event: MessageReceived, text: str) -> bool:
    """An answer in a direct chat to a post the person was sent there (in its thread, on
    Slack and Matrix) is a comment on that post."""
    assert event.reply_to is not None
    ref = ctx.uow.outbox.find_ref(
        ctx.platform, event.reply_to.conversation, event.reply_to.message_id
    )
    if ref is None or ref.item_id is None or not text:
        return False
    item, group = ctx.policy.item(ref.item_id)
    add_comment(ctx, item, group, text)
    return True


def on_comment_answer(ctx: Ctx, prompt: Prompt, text: str) -> None:
    """The comment the person was asked for (the Comment button) is their next message."""
    item, group = ctx.policy.item(prompt.ref)
    add_comment(ctx, item, group, text)


def _start_share_flow(
    ctx: Ctx, text: str, files: list[dict[str, Any]], album: str | None = None
) -> None:
    if not text and not files:
        return
    waiting = None
    if album:
        ctx.uow.people.lock(ctx.person.id)  # the album's other photos wait, then join
        waiting = ctx.uow.state.album_draft(ctx.person.id, album)
    if waiting is not None:  # the album's question was asked with its first file
        waiting.files = [*waiting.files, *files]
        waiting.text = waiting.text or text[:MAX_TEXT]  # the caption may be on any photo
        return
    groups = ctx.policy.postable_groups()
    if not groups:
        ctx.reply("share.no_groups", prefix=ctx.prefix)
        return
    draft = ctx.uow.state.add_draft(
        ctx.person.id, text[:MAX_TEXT], ctx.platform, ctx.now, files=files, album=album
    )
    buttons = tuple(
        Button(label=g.name, action="share.pick", value=f"{draft.id}:{g.id}") for g in groups
    )
    ctx.reply_message(Message(text=ctx.t("share.which_group"), buttons=buttons))


def _on_room_message(ctx: Ctx, event: MessageReceived, text: str) -> None:
    room = ctx.room()
    if room is None or room.group_id is None or not (text or event.attachments):
        return
    group = ctx.uow.groups.get(room.group_id)
    if group is None or not ctx.policy.can_read(group):
        return  # someone in the room who may not post to the group: not relayed
    if event.reply_to is not None:
        ref = ctx.uow.outbox.find_ref(
            ctx.platform, event.reply_to.conversation, event.reply_to.message_id
        )
        if ref is not None and ref.item_id is not None:
            item = ctx.uow.items.get(ref.item_id)
            if item is not None and item.group_id == group.id:
                add_comment(ctx, item, group, text)
                return
    post(
        ctx,
        group,
        text,
        room=room,
        files=file_dicts(event.attachments),
        message_id=event.message_id,
    )


# --- buttons and reactions ------------------------------------------------------------


def on_share_pick(ctx: Ctx, value: str) -> None:
    draft_id, _, group_id = value.partition(":")
    ctx.uow.people.lock(ctx.person.id)  # a photo of its album still being added goes first
    draft = ctx.uow.state.draft(int(draft_id)) if draft_id.isdigit() else None
    # A draft is its author's alone: a pressed button of someone else's is stale.
    if draft is None or draft.person_id != ctx.person.id or not group_id.isdigit():
        raise UserError("error.button_expired")
    if guide.expired(draft.created_at, ctx.now):  # unanswered for ten minutes: gone
        ctx.uow.state.drop_draft(draft)
        ctx.settle("guide.expired")
        return
    group = ctx.uow.groups.get(int(group_id))
    if group is None or not ctx.policy.can_see(group):
        raise UserError("error.button_expired")
    ctx.policy.require_post(group)
    item = post(ctx, group, draft.text, files=draft.files)
    ctx.uow.state.drop_draft(draft)
    ctx.settle("share.done", item=show_id(item.id, "item"), group=group.name)


def on_comment_button(ctx: Ctx, value: str) -> None:
    item, group = ctx.policy.item(int(value) if value.isdigit() else 0)
    typed = ctx.event.text if isinstance(ctx.event, ButtonPressed) else None
    if typed is not None:  # typed with the press (Slack's comment modal): no question
        add_comment(ctx, item, group, typed)
        return
    ctx.uow.state.set_prompt(ctx.person.id, "comment", item.id, ctx.now)
    # Read by everyone in a shared room, whose next message there is a post: the answer
    # is the reply to the question (Telegram's ForceReply opens it), which says so. (A
    # question shown to the asker alone, Slack's ephemeral one, cannot be replied to.)
    shared = ctx.in_room and ctx.platform not in ctx.core.settings.private_in_room
    key = "comment.prompt_reply" if shared else "comment.prompt"
    text = ctx.t(key, item=show_id(item.id, "item"))
    ctx.reply_message(Message(text=text, meta={"prompt": "comment"}))


def on_like_button(ctx: Ctx, value: str) -> None:
    item, group = ctx.policy.item(int(value) if value.isdigit() else 0)
    existing = ctx.uow.items.reaction(item.id, ctx.person.id, LIKE)
    if existing is None:
        ctx.uow.items.add_reaction(item.id, ctx.person.id, LIKE, ctx.now)
    else:
        ctx.uow.items.remove_reaction(existing)
    pressed = ctx.event.message if isinstance(ctx.event, ButtonPressed) else None
    if not likes_changed(ctx, item, group, pressed):
        ctx.reply("like.done" if existing is None else "like.undone", item=show_id(item.id, "item"))


def likes_changed(ctx: Ctx, item: Item, group: Group, shown: MessageRefIn | None) -> bool:
    """After a like given or taken back: every card of the post on the messengers that
    edit in place shows the new count ("👍 3"), and the card it was given on too (the
    opened post of `show`). True when the person sees it there, so that no message
    needs to say it."""
    in_place = ctx.core.settings.shown_in_place
    refresh_cards(ctx.uow, item.id, in_place, ctx.now)
    if ctx.platform not in in_place or shown is None:
        return False
    ref = ctx.uow.outbox.find_ref(ctx.platform, shown.conversation, shown.message_id)
    if ref is None or ref.item_id != item.id:
        show_opened(ctx, item, group, shown)
    return True


def show_opened(ctx: Ctx, item: Item, group: Group, shown: MessageRefIn) -> None:
    """The opened post (`show`) a like was given on, again in its place with the new
    count. Only in place: where it cannot be edited any more, nothing is sent."""
    outlets = len(ctx.core.settings.outlets.outlets)
    card = post_message(
        ctx.uow,
        ctx.t,
        item,
        group,
        ctx.core.timezone_of(ctx.person),
        platform_names=dict(ctx.core.platform_names),
        can_propose=may_propose(ctx.person, outlets),
    )
    card = replace(card, replaces=shown.message_id, edit_only=True)
    target = ctx.core.reply_target(ctx.event)
    direct = ctx.event.meta.conversation.direct
    ctx.core.enqueue(ctx.uow, target, card, ctx.person.id if direct else None, ctx.now)


def _reacted_post(ctx: Ctx, message: MessageRefIn) -> tuple[Item, Group] | None:
    """The post a reaction is on, where the person may read it."""
    ref = ctx.uow.outbox.find_ref(ctx.platform, message.conversation, message.message_id)
    if ref is None or ref.item_id is None:
        return None  # a reaction on something that is not a post
    group_item = ctx.uow.items.get(ref.item_id)
    if group_item is None:
        return None
    group = ctx.uow.groups.get(group_item.group_id)
    if group is None or not ctx.policy.can_read(group):
        return None
    return group_item, group


def on_reaction_added(ctx: Ctx, event: ReactionAdded) -> None:
    found = _reacted_post(ctx, event.message)
    if found is None:
        return
    group_item, group = found
    added = ctx.uow.items.add_reaction(group_item.id, ctx.person.id, event.emoji[:64], ctx.now)
    if added and event.emoji == LIKE:
        likes_changed(ctx, group_item, group, event.message)


def on_reaction_removed(ctx: Ctx, event: ReactionRemoved) -> None:
    """A reaction taken back on a post: the person's reaction is gone (a 👍: unliked,
    the cards show the count again). Nothing is said: the person sees it."""
    found = _reacted_post(ctx, event.message)
    if found is None:
        return
    group_item, group = found
    existing = ctx.uow.items.reaction(group_item.id, ctx.person.id, event.emoji[:64])
    if existing is None:
        return
    ctx.uow.items.remove_reaction(existing)
    if event.emoji == LIKE:
        likes_changed(ctx, group_item, group, event.message)


HANDLERS = Handlers(
    commands={
        "share": on_share,
        "items": on_items,
        "comment": on_comment,
    },
    actions={
        "share.pick": on_share_pick,
        "item.comment": on_comment_button,
        "item.like": on_like_button,
    },
    message=on_plain_message,
    reactions=(on_reaction_added,),
    unreactions=(on_reaction_removed,),
    prompts={"comment": on_comment_answer},
)
