"""show (zeigen): one post whole, with its comments and what one can do with it."""

from __future__ import annotations

from bot import announcements, polls
from bot.core import Ctx
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import ID_PREFIXES, parse_id, show_id
from bot.show import may_propose, post_message
from store.models import ItemKind


def on_show(ctx: Ctx, cmd: Command) -> None:
    raw = str(cmd.arg("item")).strip()
    if raw[:1].upper() == ID_PREFIXES["poll"] and raw[1:].isdigit():  # a poll by its V5
        ctx.reply_message(polls.card_for(ctx, polls.find(ctx, raw)))
        return
    open_post(ctx, parse_id(raw, "item"))


def open_post(ctx: Ctx, item_id: int) -> None:
    item, group = ctx.policy.item(item_id)
    # A poll or an announcement is shown as its card: the tally and the vote buttons, or
    # the text with Read ✓ where the reader still has to confirm it.
    if item.kind == ItemKind.POLL and (poll := ctx.uow.announcements.poll_of_item(item.id)):
        ctx.reply_message(polls.card_for(ctx, poll))
        return
    if item.kind == ItemKind.ANNOUNCEMENT and (
        announcement := ctx.uow.announcements.of_item(item.id)
    ):
        ctx.reply_message(announcements.card_for(ctx, announcement))
        return
    outlets = len(ctx.core.settings.outlets.outlets)
    ctx.reply_message(
        post_message(
            ctx.uow,
            ctx.t,
            item,
            group,
            ctx.core.timezone_of(ctx.person),
            platform_names=dict(ctx.core.platform_names),
            can_propose=may_propose(ctx.person, outlets),
        )
    )


def on_open_button(ctx: Ctx, value: str) -> None:
    """A digest's button on one of its posts: the post opened, as `show` does."""
    ctx.private = True
    open_post(ctx, int(value) if value.isdigit() else 0)


def on_propose_button(ctx: Ctx, value: str) -> None:
    """Propose on an opened post: how, with the channels there are."""
    ctx.policy.require_internal()
    item, _ = ctx.policy.item(int(value) if value.isdigit() else 0)
    names = [spec.name for spec in ctx.core.settings.outlets.outlets]
    ctx.reply(
        "show.propose_how",
        prefix=ctx.prefix,
        item=show_id(item.id, "item"),
        outlet=names[0] if names else "",
        outlets=", ".join(names),
    )


HANDLERS = Handlers(
    commands={"show": on_show},
    actions={"item.open": on_open_button, "item.propose": on_propose_button},
)
