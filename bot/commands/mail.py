"""Mail: `email <address>` and `email confirm <code>` make an address a person's own;
a mail to a group's address becomes a post, a reply to a notification a comment."""

from __future__ import annotations

from datetime import timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address

from bot import access
from bot.commands.sharing import add_comment, file_dicts, post
from bot.core import Ctx
from bot.errors import UserError, WrongCode
from bot.events import MessageReceived
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import show_id
from bot.message import Message, Target
from bot.words import fold
from store.codes import new_code, normalize_code
from store.models import MAIL_PLATFORM, ItemKind

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


HANDLERS = Handlers(commands={"email": on_email, "newsletter": on_newsletter}, mail=on_mail)
