"""Mail: `email <address>` and `email confirm <code>` make an address a person's own;
a mail to a group's address becomes a post, a reply to a notification a comment."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

from bot import access
from bot import help as help_texts
from bot.commands.sharing import add_comment, file_dicts, post
from bot.core import Ctx
from bot.errors import UserError, WrongCode
from bot.events import (
    Actor,
    CommandInvoked,
    Conversation,
    Event,
    InboundFile,
    MessageReceived,
    Meta,
    dump_event,
    load_event,
)
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import show_id
from bot.markup import Markup
from bot.message import Message, Target
from bot.newsletters import add_entry
from bot.policy import Policy
from bot.words import fold
from store.codes import new_code, normalize_code
from store.models import MAIL_PLATFORM, HeldMail, InboxStatus, ItemKind

CODE_MINUTES = 30
CONFIRM_WORDS = frozenset({"confirm", "bestaetigen", "bestätigen"})


def mail_address(typed: str) -> str | None:
    """A typed address as Pinwall keeps it (lower case), or None when it is not one
    address of the form local@domain.tld (the stdlib's RFC 5322 parser decides)."""
    typed = typed.strip().strip("<>")
    try:
        address = Address(addr_spec=typed)
    except (HeaderParseError, ValueError, IndexError):
        return None
    domain = address.domain
    if not address.username or "." not in domain.strip(".") or domain != domain.strip("."):
        return None
    return address.addr_spec.lower()


def on_email(ctx: Ctx, cmd: Command) -> None:
    words = str(cmd.arg("address")).split()
    if words and fold(words[0]) in CONFIRM_WORDS:
        if len(words) < 2:
            raise UserError("error.missing_argument", param="code", usage_of="email")
        _confirm(ctx, " ".join(words[1:]))
        return
    _request(ctx, " ".join(words))


def _request(ctx: Ctx, typed: str) -> None:
    address = mail_address(typed)
    if address is None or len(typed.split()) != 1:
        raise UserError("mail.error.address", address=typed, usage_of="email")
    if ctx.platform == MAIL_PLATFORM:  # a code mailed to the address it came from proves nothing
        raise UserError("mail.error.from_messenger")
    if MAIL_PLATFORM not in ctx.core.settings.running:  # the code would wait for ever
        raise UserError("mail.error.not_set_up")
    owner = ctx.uow.mail.verified(address)
    if owner is not None and owner.person_id == ctx.person.id:
        ctx.reply("mail.already_yours", address=address)
        return
    if owner is not None or ctx.uow.people.account(MAIL_PLATFORM, address) is not None:
        raise UserError("mail.error.taken", address=address)
    code = new_code(8)
    ctx.uow.mail.request(
        ctx.person.id, address, code, ctx.now + timedelta(minutes=CODE_MINUTES), ctx.now
    )
    prefix = ctx.prefix
    body = ctx.t("mail.verify.body", code=code, minutes=CODE_MINUTES, prefix=prefix)
    message = Message(title=ctx.t("mail.verify.subject"), text=body, meta={"kind": "verify"})
    ctx.core.enqueue(ctx.uow, Target(MAIL_PLATFORM, "dm", address), message, None, ctx.now)
    ctx.audit("mail.requested", ctx.person.handle, address=address)
    ctx.reply("mail.code_sent", address=address, minutes=CODE_MINUTES, prefix=prefix)


def _confirm(ctx: Ctx, typed: str) -> None:
    access.check_code_tries(ctx.uow, ctx.event.meta.actor, ctx.now)
    pending = ctx.uow.mail.pending(ctx.person.id)
    if pending is None or pending.code is None:
        raise UserError("mail.error.nothing_pending")
    if pending.code_expires_at is None or pending.code_expires_at <= ctx.now:
        raise UserError("mail.error.code_expired", address=pending.address)
    if normalize_code(typed) != pending.code:
        raise WrongCode("mail.error.wrong_code", kind="link")
    address = pending.address
    if ctx.uow.mail.verified(address) is not None or ctx.uow.people.account(MAIL_PLATFORM, address):
        raise UserError("mail.error.taken", address=address)
    pending.verified_at, pending.code, pending.code_expires_at = ctx.now, None, None
    ctx.uow.people.add_account(
        ctx.person, platform=MAIL_PLATFORM, external_id=address, username=address, now=ctx.now
    )
    ctx.audit("mail.verified", ctx.person.handle, address=address)
    ctx.reply("mail.verified", address=address)


def on_mail(ctx: Ctx, event: MessageReceived) -> None:
    """A mail the adapter accepted from this person (their verified address, the mail
    authenticated): a post of the group its address named, or a comment on the post its
    reply address named. A refusal (not a member, may not see the post) is answered by
    mail and changes nothing."""
    kind, _, ref = (event.to or "").partition(":")
    text = event.text.strip()
    subject = " ".join((event.subject or "").split())
    if kind == "item" and ref.isdigit():
        item, group = ctx.policy.item(int(ref))
        add_comment(ctx, item, group, text or subject)
        return
    if kind != "group" or not ref:
        raise UserError("mail.error.address_unknown")
    group = ctx.policy.group(ref)
    ctx.policy.require_post(group)
    content = f"{subject}\n\n{text}".strip() if subject and subject not in text else text
    item = post(ctx, group, content, files=file_dicts(event.attachments))
    if subject and item.kind != ItemKind.LINK:
        item.title = subject[:500]  # a note's or a file's title; a link's is its preview's
    ctx.reply("share.done", item=show_id(item.id, "item"), group=group.name)


def on_newsletter(ctx: Ctx, cmd: Command) -> None:
    """`newsletter <group> <address>`: mails from that sender to the group's newsletter
    address become entries (moderators, admins); without an address: who may send."""
    group = ctx.policy.group(cmd.arg("group"))
    ctx.policy.require_moderator(group)
    typed = cmd.arg("address")
    if typed is None:
        senders = ctx.uow.mail.newsletter_senders(group.id)
        key = "mail.newsletter.list" if senders else "mail.newsletter.none"
        ctx.reply(key, group=group.name, slug=group.slug, senders=", ".join(senders))
        return
    address = mail_address(str(typed))
    if address is None:
        raise UserError("mail.error.address", address=str(typed), usage_of="newsletter")
    if not ctx.uow.mail.allow_sender(group.id, address, ctx.person.id, ctx.now):
        raise UserError("mail.newsletter.already", address=address, group=group.name)
    ctx.audit("newsletter.allowed", group.slug, address=address)
    ctx.reply("mail.newsletter.allowed", address=address, group=group.name, slug=group.slug)


# --- held mails ---------------------------------------------------------------------------


def _held_groups(ctx: Ctx, held: HeldMail) -> list[int]:
    """The groups a held mail was for (a group's address, a reply to one of its posts,
    a group's newsletter address)."""
    ids: list[int] = []
    content = held.content or {}
    slugs = [str(t).partition(":")[2] for t in content.get("to", []) if str(t).startswith("group:")]
    slugs += [
        str(r).strip("<>").partition("@")[0].partition("+")[2]
        for r in content.get("newsletter", [])
    ]
    for slug in slugs:
        group = ctx.uow.groups.by_slug(slug)
        if group is not None:
            ids.append(group.id)
    for target in content.get("to", []):
        kind, _, ref = str(target).partition(":")
        item = ctx.uow.items.get(int(ref)) if kind == "item" and ref.isdigit() else None
        if item is not None:
            ids.append(item.group_id)
    return ids


def _may_decide_group(ctx: Ctx, group_id: int) -> bool:
    if ctx.policy.is_admin:
        return True
    membership = ctx.uow.groups.membership(ctx.person.id, group_id)
    return membership is not None and membership.moderator


def _may_decide(ctx: Ctx, held: HeldMail) -> bool:
    """Admins decide on every held mail, moderators on those for their groups."""
    if ctx.policy.is_admin:
        return True
    return any(_may_decide_group(ctx, group_id) for group_id in _held_groups(ctx, held))


def on_email_held(ctx: Ctx, cmd: Command) -> None:
    """`mail held`: the mails held because their sender could not be verified, that the
    asker may release or drop (moderators: of their groups; admins: all)."""
    held = [h for h in ctx.uow.mail.held(200) if _may_decide(ctx, h)]
    if not held:
        ctx.reply("mail.held.none")
        return
    zone = ctx.core.timezone_of(ctx.person)
    lines = [ctx.t("mail.held.header", count=len(held))]
    for h in held[:20]:
        content = h.content or {}
        where = [
            str(t).partition(":")[2] if str(t).startswith("group:") else str(t)
            for t in content.get("to", [])
        ]
        where += ["newsletter" for _ in content.get("newsletter", [])]
        lines.append(
            ctx.t(
                "mail.held.line",
                id=h.id,
                at=ctx.t.datetime(h.held_at, zone),
                sender=h.sender,
                to=", ".join(where) or "-",
                subject=h.subject or "-",
                why=ctx.t("mail.held.why_not_addressed")
                if content.get("reason") == "not_addressed"
                else ctx.t("mail.held.why_not_verified"),
            )
        )
    lines.append(ctx.t("mail.held.how"))
    ctx.reply_markup(Markup("\n".join(str(line) for line in lines)))


def _decidable(ctx: Ctx, held_id: int, usage: str) -> HeldMail:
    held = ctx.uow.mail.held_mail(held_id)
    if held is None or not _may_decide(ctx, held):
        raise UserError("mail.held.unknown", id=held_id, usage_of=usage)
    if held.status != "held":
        key = (
            "mail.held.already_released"
            if held.status == "released"
            else "mail.held.already_dropped"
        )
        raise UserError(key, id=held_id)
    return held


def on_email_release(ctx: Ctx, cmd: Command) -> None:
    """`mail release <id>`: the held mail becomes what it would have been had its sender
    been verified: a post, comment or command of the person it is from, as them, or a
    newsletter's entry. It is recorded in the inbox as the mail itself would have been,
    so that the same mail arriving again (authenticated, or redelivered) is taken once."""
    held = _decidable(ctx, int(cmd.arg("id")), "email release")
    content = held.content or {}
    left_out: list[str] = []
    if content.get("newsletter"):
        _release_newsletter(ctx, held, content)
    else:
        left_out = _release_mail(ctx, held, content)
    if left_out:  # the rest stays held for those who moderate it
        ctx.audit("mail.released", held.sender, held=held.id, left_out=left_out)
        ctx.reply(
            "mail.held.released_partly", id=held.id, sender=held.sender, left=", ".join(left_out)
        )
        return
    held.status, held.decided_by, held.decided_at = "released", ctx.person.id, ctx.now
    ctx.audit("mail.released", held.sender, held=held.id)
    ctx.reply("mail.held.released", id=held.id, sender=held.sender)


def _held_events(held: HeldMail, content: dict[str, Any], now: datetime) -> list[Event]:
    """The events the mail was (as the receiver made them when it held it); for a mail
    held before they were kept, made again from its words."""
    if "events" in content:
        return [load_event(e) for e in content["events"]]
    files = tuple(
        InboundFile(
            name=str(f["name"]),
            blob_id=str(f["blob_id"]),
            mime_type=f.get("mime_type"),
            size=f.get("size"),
        )
        for f in content.get("files", [])
    )
    return [
        MessageReceived(
            meta=Meta(
                platform=MAIL_PLATFORM,
                event_id=f"held {held.id} {to}",
                actor=Actor(platform=MAIL_PLATFORM, external_id=held.sender),
                conversation=Conversation(external_id=held.sender, direct=True),
                time=now,
            ),
            text=str(content.get("text") or ""),
            attachments=files,
            message_id=content.get("message_id") or None,
            intent="mail",
            subject=str(content.get("subject") or "") or None,
            to=str(to),
        )
        for to in content.get("to", [])
    ]


def _target_group(ctx: Ctx, event: Event) -> tuple[int | None, str]:
    """The group a held mail's event goes into (None: a command, no group's) and how the
    releaser is told of it when it is not theirs to release."""
    if not isinstance(event, MessageReceived):
        return None, str(ctx.t("mail.held.commands"))
    kind, _, ref = (event.to or "").partition(":")
    group = None
    if kind == "group":
        group = ctx.uow.groups.by_slug(ref)
    elif kind == "item" and ref.isdigit():
        item = ctx.uow.items.get(int(ref))
        group = ctx.uow.groups.get(item.group_id) if item is not None else None
    return (None, ref) if group is None else (group.id, group.name)


def _release_mail(ctx: Ctx, held: HeldMail, content: dict[str, Any]) -> list[str]:
    """Posts (comments, commands) of the held mail as its sender, into the groups the
    releaser decides on (a moderator: those they moderate; commands: admins only).
    Returns the targets left out, for their own moderators."""
    person = ctx.uow.people.get(held.person_id) if held.person_id is not None else None
    account = ctx.uow.people.account(MAIL_PLATFORM, held.sender)
    if person is None or account is None or not person.active:
        raise UserError("mail.held.cannot_release", id=held.id, sender=held.sender)
    taken = 0
    left_out: list[str] = []
    for event in _held_events(held, content, ctx.now):
        group_id, name = _target_group(ctx, event)
        if not ctx.policy.is_admin and (group_id is None or not _may_decide_group(ctx, group_id)):
            if ctx.uow.inbox.get(MAIL_PLATFORM, event.meta.event_id) is None:
                left_out.append(name)  # not released by anyone yet
            continue
        # in the inbox, as if it had come authenticated: if it did since (or was
        # released before), the inbox has it and it is not applied twice
        recorded = ctx.uow.inbox.record(
            MAIL_PLATFORM,
            event.meta.event_id,
            dump_event(event),
            ctx.now,
            status=InboxStatus.APPLIED,
        )
        if recorded is None:
            continue
        taken += 1
        # the person's own context: their rights, their language, answers to their address
        as_them = replace(
            ctx,
            event=event,
            person=person,
            account=account,
            t=ctx.core.translator(person),
            policy=Policy(ctx.uow, person),
            private=False,
            pointed=False,
            replaces=None,
        )
        try:
            match event:
                case CommandInvoked(name=name, arguments=arguments):
                    ctx.core.run_command(as_them, name, arguments)
                case MessageReceived():
                    on_mail(as_them, event)
        except UserError as err:  # what the mail asked for is not theirs to do (any more)
            reason = help_texts.error_text(ctx.core, err, ctx.t, ctx.platform)
            raise UserError("mail.held.refused", id=held.id, reason=reason) from None
    if not taken:
        raise UserError("mail.held.already_received", id=held.id, sender=held.sender)
    return left_out


def _release_newsletter(ctx: Ctx, held: HeldMail, content: dict[str, Any]) -> None:
    """A held newsletter: its entry in each of its groups that the releaser decides on
    and that allowed its sender (once per Message-ID and link, as when it arrives)."""
    entry = content.get("entry")
    if not isinstance(entry, dict):  # held before its entry was kept
        raise UserError("mail.held.cannot_release", id=held.id, sender=held.sender)
    sender = str(content.get("sender") or held.sender)
    outcomes: list[str] = []
    refused: list[str] = []
    for recipient in content.get("newsletter", []):
        slug = str(recipient).strip("<>").partition("@")[0].partition("+")[2]
        group = ctx.uow.groups.by_slug(slug)
        if group is None or not _may_decide_group(ctx, group.id):
            continue
        outcome = add_entry(
            ctx.uow,
            slug,
            sender,
            title=str(entry.get("title") or ""),
            url=entry.get("url") or None,
            text=str(entry.get("text") or ""),
            message_id=str(content.get("message_id") or ""),
            now=ctx.now,
        )
        outcomes.append(outcome)
        if outcome == "not_allowed":
            refused.append(slug)
    if "posted" not in outcomes and refused:
        raise UserError("mail.held.sender_not_allowed", id=held.id, sender=sender, slug=refused[0])
    if "posted" not in outcomes:
        raise UserError("mail.held.already_received", id=held.id, sender=sender)


def on_email_drop(ctx: Ctx, cmd: Command) -> None:
    """`mail drop <id>`: the held mail is discarded (it stays in the audit log)."""
    held = _decidable(ctx, int(cmd.arg("id")), "email drop")
    held.status, held.decided_by, held.decided_at = "dropped", ctx.person.id, ctx.now
    held.content = {"to": (held.content or {}).get("to", []), "files": []}  # its words go
    ctx.audit("mail.dropped", held.sender, held=held.id)
    ctx.reply("mail.held.dropped", id=held.id, sender=held.sender)


HANDLERS = Handlers(
    commands={
        "email": on_email,
        "email held": on_email_held,
        "email release": on_email_release,
        "email drop": on_email_drop,
        "newsletter": on_newsletter,
    },
    mail=on_mail,
)
