"""poll (umfrage): ask a group, close it; the vote buttons. Thin: see bot.polls."""

from __future__ import annotations

from bot import polls
from bot.core import Ctx
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import show_id
from bot.words import fold


def on_poll(ctx: Ctx, cmd: Command) -> None:
    first = str(cmd.arg("group"))
    if fold(first) in polls.CLOSE_WORDS:  # poll close V3
        poll = polls.find(ctx, str(cmd.arg("question")).strip())
        if poll.author_id != ctx.person.id and not ctx.policy.is_admin:
            group = ctx.uow.groups.get(poll.group_id)
            if group is None or not ctx.policy.can_moderate(group):
                raise UserError("error.poll_close_not_yours", ref=show_id(poll.id, "poll"))
        if not polls.close(ctx.core, ctx.uow, poll, ctx.now, ctx.person.id):
            raise UserError("error.poll_closed", ref=show_id(poll.id, "poll"))
        if not ctx.in_direct_chat:
            ctx.reply("poll.closed_by_you", ref=show_id(poll.id, "poll"))
        return
    group = ctx.policy.group(first)
    poll = polls.create(
        ctx,
        group,
        str(cmd.arg("question") or ""),
        multi=bool(cmd.flags.get("multi")),
        anonymous=bool(cmd.flags.get("anonymous")),
        closes=cmd.flags.get("closes"),
    )
    if not ctx.in_direct_chat:
        ctx.reply("poll.created_here", ref=show_id(poll.id, "poll"), group=group.name)


def on_vote_button(ctx: Ctx, value: str) -> None:
    poll_id, option = polls.parse_vote(value)
    polls.vote(ctx, poll_id, option)


def on_choice(ctx: Ctx, value: str) -> None:
    poll_id, options = polls.parse_choice(value)
    polls.choose(ctx, poll_id, options)


HANDLERS = Handlers(
    commands={"poll": on_poll},
    actions={polls.VOTE_ACTION: on_vote_button, polls.CHOOSE_ACTION: on_choice},
    renderers={"poll": polls.render_poll, "presult": polls.render_result},
)
