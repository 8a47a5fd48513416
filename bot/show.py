"""One post whole, as `show #12` opens it: title, text, link, files, who shared it
when, its reactions by emoji and its comments, with what one can do with it (comment,
react, propose it to a public channel where this person may).

Also the short one-line form of a post that lists show (`items`), cut with "…".
"""

from __future__ import annotations

from bot.authors import author_label, forgotten
from bot.delivery import LIKE, like_label
from bot.i18n import Translator
from bot.linklabel import link_label
from bot.markup import Markup, esc, link
from bot.message import Button, FileRef, Message
from store.models import Group, Item, ItemKind, Person
from store.uow import UnitOfWork

# How many comments an opened post shows (the newest; the count says how many more).
COMMENTS_SHOWN = 20
# One line of a list on a phone: a post's text in `items` is cut to this with "…".
LINE_MAX = 100
PREVIEW_MAX = 300


def one_line(text: str, limit: int = LINE_MAX) -> str:
    """The text flattened to one line of at most `limit` characters, "…" where cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _author(t: Translator, item: Item, author: Person | None, names: dict[str, str]) -> str:
    if author is not None:
        return f"@{author.handle}"
    if forgotten(item.kind, item.author_id):
        return str(t("author.former_member"))
    if item.kind == ItemKind.FEED_ENTRY and item.site_name and item.site_name.strip():
        return " ".join(item.site_name.split())
    return names.get(item.source_platform or "", "Pinwall")


def may_propose(person: Person, outlets: int) -> bool:
    """Whether the Propose action is offered: outlets exist and the person is staff."""
    return outlets > 0 and not person.role_enum.is_external


def post_message(
    uow: UnitOfWork,
    t: Translator,
    item: Item,
    group: Group,
    zone: str,
    *,
    platform_names: dict[str, str],
    can_propose: bool,
) -> Message:
    """The whole post as one message, with its actions as buttons."""
    found = uow.items.to_render(item.id)
    author = found[2] if found else None
    files = tuple(
        FileRef(blob_id=b, name=n, mime_type=m, image=bool(m and m.startswith("image/")))
        for b, n, m in (found[3] if found else [])
    )
    by = _author(t, item, author, platform_names)
    title = t(
        "show.title",
        item=f"#{item.id}",
        author=by,
        group=group.name,
        when=t.datetime(item.dated_at, zone),
    )
    lines: list[str] = []
    text = item.text.strip()
    if text:
        lines.append(esc(text))
    if item.url:
        lines.append(link(item.url, link_label(item.url, item.title)))
        description = " ".join((item.description or "").split())
        if description:
            lines.append(esc(one_line(description, PREVIEW_MAX)))
    if files:
        lines.append(t("show.files", names=", ".join(f.name for f in files)))
    reactions = uow.items.reaction_counts([item.id]).get(item.id, [])
    if reactions:
        shown = " · ".join(f"{emoji} {count}" for emoji, count in reactions)
        lines.append(t("show.reactions", reactions=shown))
    comments = list(uow.items.comments(item.id))
    if comments:
        lines.append("")
        lines.append(t("show.comments", count=len(comments)))
        older = len(comments) - COMMENTS_SHOWN
        if older > 0:
            lines.append(t("show.older_comments", count=older))
        people = {c.author_id for c in comments if c.author_id is not None}
        handles = {p: uow.people.get(p) for p in people}
        for c in comments[-COMMENTS_SHOWN:]:
            who = handles.get(c.author_id) if c.author_id is not None else None
            lines.append(
                t(
                    "show.comment",
                    author=author_label(t, who.handle if who else None),
                    when=t.datetime(c.created_at, zone),
                    text=" ".join(c.text.split()),
                )
            )
    else:
        lines.append(t("show.no_comments"))
    buttons = [
        Button(label=t("button.comment"), action="item.comment", value=str(item.id)),
        Button(
            label=like_label(dict(reactions).get(LIKE, 0)), action="item.like", value=str(item.id)
        ),
    ]
    if can_propose:
        buttons.append(Button(label=t("show.propose"), action="item.propose", value=str(item.id)))
    return Message(
        title=title,
        text=Markup("\n".join(lines)),
        files=files,
        buttons=tuple(buttons),
        meta={"item": item.id},
    )
