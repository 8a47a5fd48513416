"""search: posts and comments from every messenger, ranked, paged, only from groups the
reader may read (the policy decides which; store.search finds and ranks)."""

from __future__ import annotations

from sqlalchemy import select

from bot.authors import author_label, forgotten
from bot.core import Ctx
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import show_id
from bot.linklabel import link_label
from bot.markup import Markup
from store.models import Comment, Item
from store.search import query_groups

PAGE = 10
SNIPPET = 140


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET else flat[: SNIPPET - 1].rstrip() + "…"


def on_search(ctx: Ctx, cmd: Command) -> None:
    query = str(cmd.arg("words")).strip()
    page = int(cmd.flags.get("page", 1))
    if page < 1:
        raise UserError("error.not_a_number", param="--page", value=page, usage_of="search")
    if not query_groups(query):
        raise UserError("search.no_words", usage_of="search")
    groups = {g.id: g for g in ctx.policy.readable_groups()}
    hits, total = ctx.uow.search.search(query, list(groups), limit=PAGE, offset=(page - 1) * PAGE)
    # Announcements to everyone are no post of a group: found among those the asker got
    # (or made; an admin: any), on the first page, before the posts.
    announced = (
        ctx.uow.announcements.to_everyone(
            None if ctx.policy.is_admin else ctx.person.id,
            words=[w.strip("\"'") for w in query.split() if not w.startswith("-")],
        )
        if page == 1
        else []
    )
    if not hits and not announced:
        ctx.reply("search.none" if total == 0 else "search.past_end", query=query, total=total)
        return
    total += len(announced)
    items = {
        i.id: i
        for i in ctx.uow.session.scalars(select(Item).where(Item.id.in_({h.item_id for h in hits})))
    }
    comment_ids = [h.ref_id for h in hits if h.kind == "comment"]
    comments = {
        c.id: c
        for c in (
            ctx.uow.session.scalars(select(Comment).where(Comment.id.in_(comment_ids)))
            if comment_ids
            else ()
        )
    }
    authors = {
        p.id: p.handle
        for p in ctx.uow.people.by_ids(
            {i.author_id for i in items.values()} | {c.author_id for c in comments.values()}
        )
    }
    pages = (total + PAGE - 1) // PAGE
    lines: list[str] = [ctx.t("search.header", query=query, count=total)]
    lines += [
        ctx.t("announce.digest_line", ref=show_id(a.id, "announcement"), text=_snippet(a.text))
        for a in announced
    ]
    shown: list[int] = []  # posts on this page (a comment hit shows the comment, not its post)
    for hit in hits:
        item = items.get(hit.item_id)
        if item is None or item.group_id not in groups:
            continue  # deleted, or moved out of sight since it was indexed
        group = groups[item.group_id].name
        if hit.kind == "comment" and (comment := comments.get(hit.ref_id)) is not None:
            lines.append(
                ctx.t(
                    "search.comment_line",
                    item=show_id(item.id, "item"),
                    group=group,
                    author=author_label(ctx.t, authors.get(comment.author_id or 0)),
                    text=_snippet(comment.text),
                )
            )
            continue
        shown.append(item.id)
        # The title first, shortened so that the snippet keeps the host beside it.
        title = (
            link_label(item.url, item.title, limit=SNIPPET - 1) if item.url else item.title or ""
        )
        if title == item.url:  # no title, or one that poses as an address: the URL shows
            title = ""
        text = _snippet(" — ".join(p for p in (title, item.text.strip()) if p) or item.url or "")
        if item.author_id:
            key, author = "search.item_line", authors.get(item.author_id, "")
        elif forgotten(item.kind, item.author_id):
            key, author = "search.feed_line", author_label(ctx.t, None)
        else:
            key, author = "search.feed_line", item.site_name or "Feed"
        lines.append(
            ctx.t(key, item=show_id(item.id, "item"), group=group, author=author, text=text)
        )
    if ctx.core.settings.read_tracking:  # off: nothing recorded (issue 9)
        ctx.uow.reads.record(ctx.person.id, shown, ctx.now)
    if pages > 1:
        prefix = ctx.prefix
        lines.append(
            ctx.t(
                "search.pages",
                page=page,
                pages=pages,
                more=f"{prefix}search {query} --page {page + 1}" if page < pages else "",
            )
            if page < pages
            else ctx.t("search.last_page", page=page, pages=pages)
        )
    ctx.reply_markup(Markup("\n".join(lines)))


HANDLERS = Handlers(
    commands={
        "search": on_search,
    },
)
