"""announce (ankündigen), announcement (ankündigung), and the Read ✓ button. Thin: the
work is bot.announcements'."""

from __future__ import annotations

from bot import announcements
from bot.core import Ctx
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import show_id
from bot.markup import Markup, esc
from bot.message import FileRef, Message
from bot.words import fold
from store.blobs import StoredBlob

CSV_WORDS = frozenset({"csv", "export", "exportieren"})
# `announcement A1 read`: Read ✓ typed, where there is no button to press (mail).
READ_WORDS = frozenset({"read", "gelesen", "confirm", "bestaetigen", "bestaetigt"})


def on_announce(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    announcements.announce(
        ctx,
        str(cmd.arg("groups")),
        str(cmd.arg("text") or ""),
        confirm=bool(cmd.flags.get("confirm")),
        until=cmd.flags.get("until"),
        item_ref=cmd.flags.get("item"),
    )
    # The answer is the author's card (bot.announcements): in a room, one line says so.
    if not ctx.in_direct_chat:
        ctx.core.point_to_private(ctx.uow, ctx.event, ctx.t, ctx.person.id, ctx.now)


def on_announcement(ctx: Ctx, cmd: Command) -> None:
    shape = cmd.arg("format")
    if shape is not None and fold(str(shape)) in READ_WORDS:
        to_confirm = announcements.to_confirm(ctx, str(cmd.arg("announcement")))
        announcements.confirm(ctx, str(to_confirm.id))
        return
    announcement = announcements.readable(ctx, str(cmd.arg("announcement")))
    if shape is None:
        ctx.reply_markup(announcements.status_text(ctx, announcement))
        return
    if fold(str(shape)) not in CSV_WORDS:
        raise UserError(
            "error.bad_choice", value=str(shape), choices="csv, read", usage_of="announcement"
        )
    text = announcements.csv_text(ctx.uow, announcement)
    ref = show_id(announcement.id, "announcement")
    ctx.audit("announcement.exported", ref)
    store = ctx.core.blobs
    if store is None:  # no blob store (a test core): the lines themselves
        lines = [ctx.t("announce.csv_title", ref=ref), *(esc(line) for line in text.splitlines())]
        ctx.reply_markup(Markup("\n".join(lines)))
        return
    # A file, privately (the command's answer is for the asker alone: grammar._PRIVATE).
    # Nothing refers to it once sent: the retention job removes it after a day's grace.
    stored = store.put(text.encode("utf-8"))
    ctx.uow.blobs.record(StoredBlob(stored.id, stored.size, "text/csv"), ctx.now)
    name = f"{ref}-confirmations.csv"
    ctx.reply_message(
        Message(
            text=ctx.t("announce.csv_file", ref=ref),
            files=(FileRef(blob_id=stored.id, name=name, mime_type="text/csv"),),
        )
    )


def on_confirm_button(ctx: Ctx, value: str) -> None:
    announcements.confirm(ctx, value)


HANDLERS = Handlers(
    commands={"announce": on_announce, "announcement": on_announcement},
    actions={announcements.CONFIRM_ACTION: on_confirm_button},
    renderers={
        "announce": announcements.render_announcement,
        "acard": announcements.render_card,
    },
)
