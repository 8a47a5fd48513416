"""The core: applies inbound events once, in one transaction with the messages they cause."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from bot import access, grammar, guide
from bot import help as help_texts
from bot.authors import mentions_of
from bot.clock import Clock
from bot.delivery import CORE_PLATFORM_NAMES
from bot.errors import UserError, WrongCode
from bot.events import (
    Actor,
    ButtonPressed,
    CommandInvoked,
    Event,
    MessageReceived,
    ReactionAdded,
    ReactionRemoved,
    dump_event,
    load_event,
)
from bot.handlers import Handlers
from bot.i18n import Translator, normalize_language, translator_for
from bot.markup import Markup, esc
from bot.message import Message, Target, dump_message
from bot.metrics import Metrics
from bot.outlets import OutletSettings
from bot.policy import Policy
from store.blobs import BlobStore
from store.db import Database
from store.models import Account, InboxStatus, Person, Role, Room
from store.uow import UnitOfWork

log = logging.getLogger(__name__)

# How long a reaction on a message Pinwall does not know yet may wait for that message's
# send to be recorded (see Core._reaction_too_early).
REACTION_WAIT = timedelta(minutes=2)


# What became of an event given to Core._apply_in: applied (or refused, and answered);
# left recorded for a later tick; or taken by another instance meanwhile (a redelivery).
Applied = Literal["done", "later", "elsewhere"]


class Deferred(Exception):
    """The event cannot be applied yet: it stays recorded and a later tick applies it."""


@dataclass(frozen=True)
class CoreSettings:
    default_language: str = "en"
    default_timezone: str = "Europe/Berlin"
    # (platform, external id) of the accounts that are admins, e.g. ("console", "admin")
    admins: frozenset[tuple[str, str]] = frozenset()
    # From the messengers' descriptors (app.wiring.make_core), by platform: how each is
    # named ("Telegram") and spells a command, for usage lines ("/", "/pinwall ", "!pw ")
    platform_names: Mapping[str, str] = field(default_factory=dict)
    command_prefixes: Mapping[str, str] = field(default_factory=dict)
    # How commands are typed in a shared room where that differs (a descriptor's
    # room_prefix): "@Pinwall " in a Teams channel, where only a mention reaches the bot.
    room_prefixes: Mapping[str, str] = field(default_factory=dict)
    public_url: str | None = None
    # Links that redeem an invite on a messenger, by platform, with {code} in them:
    # {"telegram": "https://t.me/pinwall_bot?start={code}"}. Adapters fill this in as
    # they start (only then do they know their bot's name).
    invite_links: dict[str, str] = field(default_factory=dict)
    # How to open a private chat with the bot, by platform ("https://t.me/pinwall_bot"),
    # for the line a room gets when an answer went to the asker privately.
    direct_links: dict[str, str] = field(default_factory=dict)
    # Platforms that can show a message in a room to one person alone (Slack's ephemeral
    # messages): a private answer stays in the room there, addressed to the asker.
    private_in_room: frozenset[str] = frozenset()
    # Platforms where a like or a reaction shows by changing its card in place ("👍 3" on
    # a post's button, "Approved by" on an approval card) rather than by a message saying
    # so: the descriptors that say `shown_in_place` (Telegram, Slack).
    shown_in_place: frozenset[str] = frozenset()
    # Platforms where an approval by reaction shows on the card (`decided_in_place`),
    # whose command menus follow a person's role (`menus_by_role`), and where a press in
    # a room is seen by the room (`presses_seen`: Matrix's reactions, typed numbers).
    decided_in_place: frozenset[str] = frozenset()
    menus_by_role: frozenset[str] = frozenset()
    presses_seen: frozenset[str] = frozenset()
    running: set[str] = field(default_factory=set)  # messengers with an adapter (Hub.register)
    outlets: OutletSettings = field(default_factory=OutletSettings)  # and proposal expiry
    read_tracking: bool = False  # PINWALL_READ_TRACKING: record and count who saw a post
    # Seconds the copies of a shared link wait for its preview before they go (0: link
    # previews are off, or nobody fetches them here); the preview worker lets them go as
    # soon as it has the preview.
    preview_wait: float = 0.0
    # Keys an anonymous poll's voters (an HMAC of poll and person): PINWALL_SECRET_KEY.
    # Tests and the console get a random one per process.
    voter_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    poll_anonymous_minimum: int = 5  # PINWALL_POLL_ANONYMOUS_MINIMUM


@dataclass
class Ctx:
    """Everything a handler needs for one event of one person."""

    core: Core
    uow: UnitOfWork
    event: Event
    person: Person
    account: Account
    now: datetime
    t: Translator
    policy: Policy
    # The command's answers are for the asker alone (grammar.Spec.private).
    private: bool = False
    # A room was told once that the answers went to the asker's private chat.
    pointed: bool = False
    # The question whose button was pressed (bot.guide): the first answer takes its place.
    replaces: str | None = None

    @property
    def platform(self) -> str:
        return self.event.meta.platform

    @property
    def in_direct_chat(self) -> bool:
        return self.event.meta.conversation.direct

    @property
    def in_room(self) -> bool:  # answers read in a shared room, not in a private chat
        return self.core.in_room(self.event, private=self.private)

    @property
    def reply_target(self) -> Target:
        return self.core.reply_target(self.event)

    def room(self) -> Room | None:
        conv = self.event.meta.conversation
        if conv.direct:
            return None
        return self.uow.rooms.get_or_create(
            self.platform, conv.external_id, name=conv.name, now=self.now
        )

    def usage(self, key: str) -> Markup:
        return self.core.usage(key, self.t, self.platform, room=self.in_room)

    @property
    def prefix(self) -> str:  # as a sentence says it where it is read (Core.prefix)
        return self.core.prefix(self.platform, self.t, room=self.in_room)

    def reply(self, key: str, /, **params: Any) -> None:
        self.reply_message(Message(text=self.t(key, **params)))

    def reply_markup(self, text: Markup) -> None:
        self.reply_message(Message(text=text))

    def reply_message(self, message: Message) -> None:
        if self.replaces is not None and message.replaces is None:
            message, self.replaces = replace(message, replaces=self.replaces), None
        went_private = self.core.answer(
            self.uow, self.event, message, self.person.id, self.now, private=self.private
        )
        if went_private and not self.pointed:
            self.pointed = True
            self.core.point_to_private(self.uow, self.event, self.t, self.person.id, self.now)

    def settle(self, key: str, /, **params: Any) -> None:
        """The outcome of a button press, shown in place of the message the button was on
        (where the platform can edit it; as a new reply elsewhere)."""
        pressed = self.event.message if isinstance(self.event, ButtonPressed) else None
        self.reply_message(
            Message(text=self.t(key, **params), replaces=pressed.message_id if pressed else None)
        )

    def tell(self, person: Person, key: str, /, **params: Any) -> None:
        """A direct message to another person, in their language. It names the one who
        acts (mostly as "@handle"): their accounts go along, for real mentions."""
        t = self.core.translator(person)
        message = Message(text=t(key, **params), meta={"mentions": mentions_of(self.person)})
        self.core.send_to_person(self.uow, person, message, self.now)

    def audit(self, action: str, subject: str, **details: Any) -> None:
        self.uow.audit.add(
            at=self.now, actor_id=self.person.id, action=action, subject=subject, details=details
        )


class Core:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: CoreSettings | None = None,
        *,
        handlers: Handlers,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings or CoreSettings()
        # "Telegram" for "telegram": the messengers' names, and the core's own (feeds).
        self.platform_names: Mapping[str, str] = {
            **CORE_PLATFORM_NAMES,
            **self.settings.platform_names,
        }
        # Which function answers what: built by the top floor (app/handlers.py).
        self.handlers = handlers
        self.metrics = Metrics()
        # Where files Pinwall makes itself (an export sent as a file) are stored: the
        # hub's blob store, given when the hub is made (bot.runtime.Hub); None without.
        self.blobs: BlobStore | None = None

    @property
    def outlet_names(self) -> list[str]:
        """The public channels' names, for examples (`propose mastodon ...`)."""
        return [spec.name for spec in self.settings.outlets.outlets]

    # --- language ------------------------------------------------------------------

    def language_of(self, person: Person | None) -> str:
        if person is not None:
            chosen = person.language or normalize_language(person.language_hint)
            if chosen:
                return chosen
        return self.settings.default_language

    def translator(self, person: Person | None) -> Translator:
        return translator_for(self.language_of(person))

    def timezone_of(self, person: Person) -> str:
        return person.timezone or self.settings.default_timezone

    def typed(self, platform: str, *, room: bool = False) -> str:  # room: "@Pinwall "
        prefixes = self.settings.room_prefixes if room else {}
        return prefixes.get(platform, self.settings.command_prefixes.get(platform, "/"))

    def in_room(self, event: Event, *, private: bool) -> bool:
        """Whether an answer is read in a shared room (not sent to a private chat)."""
        to_dm = private and event.meta.platform not in self.settings.private_in_room
        return not event.meta.conversation.direct and not to_dm

    def prefix(self, platform: str, t: Translator, *, room: bool = False) -> str:
        """Before a command in a sentence: the prefix, or the catalog's words (mail's)."""
        prefix = self.typed(platform, room=room)
        return prefix or (str(t(f"prefix.{platform}")) if t.has(f"prefix.{platform}") else "")

    def usage(self, key: str, t: Translator, platform: str, *, room: bool = False) -> Markup:
        prefix = self.prefix(platform, t, room=room)  # mail: "a reply with the word "
        lines = [s.usage_line for s in grammar.SPECS if s.key == key or s.name == key]
        return Markup("\n".join(esc(prefix + help_texts.localize_usage(line, t)) for line in lines))

    # --- outbound ------------------------------------------------------------------

    def reply_target(self, event: Event) -> Target:
        meta = event.meta
        if meta.conversation.direct:
            return Target(meta.platform, "dm", meta.actor.external_id)
        return Target(meta.platform, "room", meta.conversation.external_id)

    def enqueue(
        self,
        uow: UnitOfWork,
        target: Target,
        message: Message,
        person_id: int | None,
        now: datetime,
        *,
        item_id: int | None = None,
    ) -> None:
        uow.outbox.insert_many(
            [
                {
                    "created_at": now,
                    "platform": target.platform,
                    "target_kind": target.kind,
                    "target": target.address,
                    "person_id": person_id,
                    "item_id": item_id,
                    "payload": {"t": "msg", "m": dump_message(message)},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                }
            ]
        )

    def answer(
        self,
        uow: UnitOfWork,
        event: Event,
        message: Message,
        person_id: int | None,
        now: datetime,
        *,
        private: bool = False,
    ) -> bool:
        """The answer to an event, where it was said. In a shared room, an answer to a
        command or button is meant for the one who asked: `audience` lets a platform with
        private in-room messages (Slack's ephemeral ones) show it to them alone. A
        `private` answer (a code, a setting, what the asker's rights let them see) goes
        to the asker's direct chat on that messenger wherever the room would show it to
        everyone; True when it went there (the room is then told so, once: see
        point_to_private)."""
        meta = event.meta
        if meta.conversation.direct or not isinstance(event, (CommandInvoked, ButtonPressed)):
            self.enqueue(uow, self.reply_target(event), message, person_id, now)
            return False
        # (files too: Slack's message to one person in a channel cannot carry them)
        if private and (meta.platform not in self.settings.private_in_room or message.files):
            direct = Target(meta.platform, "dm", meta.actor.external_id)
            self.enqueue(uow, direct, message, person_id, now)
            return True
        message = replace(message, meta={**message.meta, "audience": meta.actor.external_id})
        self.enqueue(uow, self.reply_target(event), message, person_id, now)
        return False

    def point_to_private(
        self, uow: UnitOfWork, event: Event, t: Translator, person_id: int | None, now: datetime
    ) -> None:
        """One line in the room where a command was said: its answer went to the asker's
        private chat (with the way to open that chat, where a messenger needs one and
        nothing has reached the asker there yet)."""
        meta = event.meta
        name = meta.actor.display_name or meta.actor.username or meta.actor.external_id
        url = self.settings.direct_links.get(meta.platform)
        if url and person_id is not None and uow.outbox.reached_directly(person_id, meta.platform):
            url = None
        text = t("private.sent_open", name=name, url=url) if url else t("private.sent", name=name)
        self.enqueue(uow, self.reply_target(event), Message(text=text), person_id, now)

    def send_to_person(
        self, uow: UnitOfWork, person: Person, message: Message, now: datetime
    ) -> bool:
        account = uow.people.preferred_accounts([person.id]).get(person.id)
        if account is None or not person.active:
            return False
        self.enqueue(
            uow, Target(account.platform, "dm", account.external_id), message, person.id, now
        )
        return True

    def account_unreachable(self, platform: str, external_id: str) -> bool:
        """The platform says this account is gone (a deactivated Slack user): no more
        deliveries to it. True when that changed something."""
        with self.db.uow() as uow:
            account = uow.people.account(platform, external_id)
            if account is None or not account.reachable:
                return False
            account.reachable = False
            uow.audit.add(
                at=self.clock.now(),
                actor_id=None,
                action="account.unreachable",
                subject=f"{platform}:{external_id}",
                details={"person": account.person_id},
            )
            uow.commit()
        return True

    # --- inbound -------------------------------------------------------------------

    def handle(self, event: Event) -> bool:
        """Records and applies an event in one transaction. False for a redelivery."""
        now = self.clock.now()
        meta = event.meta
        with self.db.uow() as uow:
            # Written as applied at once: if applying fails, the rollback takes it back.
            row_id = uow.inbox.record(
                meta.platform, meta.event_id, dump_event(event), now, status=InboxStatus.APPLIED
            )
            if row_id is None:
                return False
            return self._apply_in(uow, row_id, event, now, mark=False) != "elsewhere"

    def record(self, event: Event) -> bool:
        """Records an event durably without applying it (adapters ack after this)."""
        with self.db.uow() as uow:
            row_id = uow.inbox.record(
                event.meta.platform, event.meta.event_id, dump_event(event), self.clock.now()
            )
            uow.commit()
            return row_id is not None

    def apply_recorded(self, limit: int = 100, received_before: datetime | None = None) -> int:
        """Applies events that were recorded but not yet applied (also after a crash);
        `received_before` leaves the newest to the adapter that is applying them now.
        Returns how many were applied (an event that must wait longer is not counted)."""
        done = 0
        with self.db.uow() as uow:
            ids = [row.id for row in uow.inbox.unapplied(limit, received_before)]
        for row_id in ids:
            with self.db.uow() as uow:
                row = uow.inbox.lock(row_id)
                if row is None or row.status != InboxStatus.RECEIVED:
                    continue
                outcome = self._apply_in(
                    uow, row_id, load_event(row.payload), self.clock.now(), mark=True
                )
                done += outcome == "done"
        return done

    def _apply_in(
        self, uow: UnitOfWork, row_id: int, event: Event, now: datetime, *, mark: bool
    ) -> Applied:
        """Applies the event; on a UserError or a crash, keeps nothing but the answer
        (written with the event's inbox row, in one transaction). "later" when it must
        wait (Deferred): then it stays recorded, not applied."""
        meta = event.meta
        try:
            self._dispatch(uow, event, now)
            if mark:
                uow.inbox.mark(row_id, InboxStatus.APPLIED, now)
            uow.commit()
            return "done"
        except Deferred:
            uow.rollback()
            if not mark:  # the rollback took the row written as applied: record it anew
                if uow.inbox.record(meta.platform, meta.event_id, dump_event(event), now) is None:
                    return "elsewhere"
                uow.commit()
            return "later"
        except UserError as err:
            uow.rollback()
            failure: UserError | None = err
            incident = ""
        except Exception:
            uow.rollback()
            failure, incident = None, secrets.token_hex(4)
            log.exception(
                "incident %s: applying %s event %s failed", incident, meta.platform, meta.event_id
            )
        status = InboxStatus.APPLIED if failure is not None else InboxStatus.FAILED
        error = None if failure is not None else f"incident {incident}"
        # The rollback took the inbox row written in the same transaction, or let go of
        # the lock on a recorded one: another instance given the same event (a messenger's
        # redelivery) may have taken it meanwhile. Then the outcome and its answer are
        # theirs; answering here too would answer it twice.
        if mark:
            row = uow.inbox.lock(row_id)
            if row is None or row.status != InboxStatus.RECEIVED:
                uow.rollback()
                return "elsewhere"
            uow.inbox.mark(row_id, status, now, error)
        else:
            new_id = uow.inbox.record(
                meta.platform, meta.event_id, dump_event(event), now, status=status
            )
            if new_id is None:
                uow.rollback()
                return "elsewhere"
            if error is not None:
                uow.inbox.mark(new_id, status, now, error)
        person = self._known_person(uow, meta.actor)
        t = (
            self.translator(person)
            if person
            else Translator(
                normalize_language(meta.actor.language) or self.settings.default_language
            )
        )
        person_id = person.id if person else None
        private = isinstance(event, CommandInvoked) and grammar.is_private(
            event.name, event.arguments
        )
        if failure is not None:
            examples = None
            if "usage_of" in failure.params or failure.key == "error.unknown_subcommand":
                examples = help_texts.example_values(uow, person, t, self.outlet_names)
            room = self.in_room(event, private=private)
            text = help_texts.error_text(self, failure, t, meta.platform, examples, room=room)
            if isinstance(failure, WrongCode):  # counted after the rollback took the rest
                access.count_wrong_code(self, uow, meta.actor, failure.kind, person_id, now)
        else:
            text = t("error.incident", incident=incident)
        if self.answer(uow, event, Message(text=text), person_id, now, private=private):
            self.point_to_private(uow, event, t, person_id, now)
        uow.commit()
        return "done"

    def _known_person(self, uow: UnitOfWork, actor: Actor) -> Person | None:
        account = uow.people.account(actor.platform, actor.external_id)
        return uow.people.get(account.person_id) if account else None

    def _dispatch(self, uow: UnitOfWork, event: Event, now: datetime) -> None:
        found = access.resolve(self, uow, event, now)
        if found is None:  # an unknown person: access.resolve already answered
            return
        person, account = found
        ctx = Ctx(
            core=self,
            uow=uow,
            event=event,
            person=person,
            account=account,
            now=now,
            t=self.translator(person),
            policy=Policy(uow, person),
        )
        match event:
            case CommandInvoked(name=name, arguments=arguments):
                self.run_command(ctx, name, arguments)
            case MessageReceived(intent="mail"):
                if self.handlers.mail is None:
                    raise UserError("error.not_available_yet", command="email")
                self.handlers.mail(ctx, event)
            case MessageReceived():
                handle_message = self.handlers.message
                if not self._answers_prompt(ctx, event) and handle_message is not None:
                    handle_message(ctx, event)
            case ButtonPressed(action=name, value=value):
                handler = self.handlers.actions.get(name)
                if handler is None:
                    raise UserError("error.button_expired")
                handler(ctx, value)
            case ReactionAdded():
                if self._reaction_too_early(uow, event, now):
                    raise Deferred
                for handle_reaction in self.handlers.reactions:
                    handle_reaction(ctx, event)
            case ReactionRemoved():
                for handle_unreaction in self.handlers.unreactions:
                    handle_unreaction(ctx, event)

    def _reaction_too_early(self, uow: UnitOfWork, event: ReactionAdded, now: datetime) -> bool:
        """A reaction on a message Pinwall does not know yet, while a send on that
        messenger is in flight: the reacted message may be the one being sent (its id is
        recorded once the send is), so the reaction waits for the next inbox tick rather
        than being lost. Not for ever: after REACTION_WAIT it is taken as it is."""
        if now - event.meta.time > REACTION_WAIT:
            return False
        m = event.message
        if uow.outbox.find_ref(event.meta.platform, m.conversation, m.message_id) is not None:
            return False
        return uow.outbox.sending_on(event.meta.platform)

    def _answers_prompt(self, ctx: Ctx, event: MessageReceived) -> bool:
        """A plain direct message (not a command, not a share) after the bot asked the
        person something is the answer: the question is taken and its handler runs."""
        text = event.text.strip()
        if event.intent != "message" or not text:
            return False
        if not event.meta.conversation.direct and not self._replies_to_prompt(ctx, event):
            return False
        if guide.is_cancel(text):  # "abbrechen", "cancel", "stop": ends any question
            guide.cancel(ctx)
            return True
        if grammar.first_word(text) in grammar.COMMAND_NAMES:
            return False
        prompt = ctx.uow.state.take_prompt(ctx.person.id)
        handler = self.handlers.prompts.get(prompt.kind) if prompt is not None else None
        if prompt is None or handler is None:
            return False
        if guide.expired(prompt.created_at, ctx.now):  # said so; the answer is not taken
            guide.say_expired(ctx, prompt)
            return True
        try:
            with ctx.uow.session.begin_nested():  # a refused answer changes nothing ...
                handler(ctx, prompt, text)
        except UserError as err:
            # ... but is answered without raising, so that the question stays taken:
            # raising would roll its removal back and trap every later message here.
            examples = help_texts.example_values(ctx.uow, ctx.person, ctx.t, self.outlet_names)
            ctx.reply_markup(
                help_texts.error_text(self, err, ctx.t, ctx.platform, examples, room=ctx.in_room)
            )
        return True

    @staticmethod
    def _replies_to_prompt(ctx: Ctx, event: MessageReceived) -> bool:
        """In a room, a reply to the question the bot asked this person there is the
        answer (Telegram's ForceReply ties it); any other message there is a post."""
        replied = event.reply_to
        if replied is None or ctx.uow.state.open_prompt(ctx.person.id) is None:
            return False
        sent = ctx.uow.outbox.sent_as(ctx.platform, replied.conversation, replied.message_id)
        if sent is None or sent.person_id != ctx.person.id:
            return False
        meta = (sent.payload.get("m") or {}).get("meta") or {}
        return bool(meta.get("prompt"))

    def run_command(self, ctx: Ctx, name: str, arguments: str) -> None:
        if guide.is_cancel(name) and not arguments.strip():  # /cancel, /abbrechen, /stop
            name = "cancel"
        try:
            cmd = grammar.parse(name, arguments)
        except UserError as err:
            # Something missing: asked for, with the valid choices (bot.guide).
            if guide.ask_missing(ctx, name, arguments, err):
                return
            raise
        handler = self.handlers.commands.get(cmd.key)
        if handler is None:
            raise UserError("error.not_available_yet", command=cmd.key)
        ctx.private = cmd.spec.private
        handler(ctx, cmd)


__all__ = ["Core", "CoreSettings", "Ctx", "Role"]
