"""Admin commands: the deliveries that keep failing, sending them again, and a link into
the operator's window."""

from __future__ import annotations

from datetime import timedelta

from bot.core import Ctx
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.markup import Markup
from store.models import OutboxStatus
from store.web_logins import new_login

FAILED_DEFAULT, FAILED_MAX = 10, 50
WEB_LOGIN_TTL = timedelta(minutes=10)


def on_outbox_failed(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_admin()
    limit = min(cmd.arg("n") or FAILED_DEFAULT, FAILED_MAX)
    dead = ctx.uow.outbox.listing([OutboxStatus.DEAD], limit)
    counts = ctx.uow.outbox.counts()
    if not dead:
        ctx.reply("outbox.none_failed", pending=counts.get(OutboxStatus.PENDING, 0))
        return
    tz = ctx.core.timezone_of(ctx.person)
    lines: list[str] = [ctx.t("outbox.failed_header", count=counts.get(OutboxStatus.DEAD, 0))]
    for row in dead:
        lines.append(
            ctx.t(
                "outbox.failed_line",
                id=row.id,
                where=f"{row.platform}:{row.target}",
                when=ctx.t.datetime(row.created_at, tz),
                attempts=row.attempts,
                error=(row.last_error or "-")[:200],
            )
        )
    lines.append(ctx.t("outbox.failed_footer", prefix=ctx.prefix))
    ctx.reply_markup(Markup("\n".join(lines)))


def on_outbox_retry(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_admin()
    raw = cmd.arg("id")
    if raw is not None and not str(raw).isdigit():
        raise UserError("error.not_a_number", param="id", value=raw, usage_of="outbox retry")
    n = ctx.uow.outbox.retry_dead(ctx.now, [int(raw)] if raw is not None else None)
    ctx.audit("outbox.retried", str(raw or "all"), count=n)
    ctx.reply("outbox.retried", count=n)


def on_admin_web(ctx: Ctx, cmd: Command) -> None:
    """A link into the operator's window, for this admin alone, once, for ten minutes."""
    ctx.policy.require_admin()
    base = ctx.core.settings.public_url
    if not base:
        raise UserError("error.admin_web_no_public_url")
    token = new_login(ctx.uow.session, ctx.person.id, ctx.now, WEB_LOGIN_TTL)
    ctx.audit("admin.web_login", ctx.person.handle)
    minutes = int(WEB_LOGIN_TTL.total_seconds() // 60)
    ctx.reply("admin_web.link", url=f"{base.rstrip('/')}/admin/login/{token}", minutes=minutes)


HANDLERS = Handlers(
    commands={
        "admin web": on_admin_web,
        "outbox failed": on_outbox_failed,
        "outbox retry": on_outbox_retry,
    },
)
