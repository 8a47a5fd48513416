"""The settings menu: a bare `settings` on a messenger shows what the person has set
(language, time zone, digest times, where digests go) with a button for each change —
an inline keyboard on Telegram, numbered choices where a messenger has no buttons.
A button runs the command it names as the person (`settings language de`, `digest
daily`, which asks for the time); Slack opens its settings modal instead, and mail keeps
the guided question (a mail has no buttons to press)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.digest import Times, clock_time
from bot.errors import UserError
from bot.markup import Markup
from bot.message import Button, Message
from store.models import MAIL_PLATFORM

if TYPE_CHECKING:
    from bot.core import Ctx

ACTION = "settings.menu"
# What a button may run: the person's own settings and digest times, nothing else.
COMMANDS = frozenset({"settings", "digest"})


def wanted(ctx: Ctx, name: str, arguments: str) -> bool:
    """Whether a command is the bare `settings` this menu answers."""
    return name == "settings" and not arguments.strip() and ctx.platform != MAIL_PLATFORM


def _mail_address(ctx: Ctx) -> str | None:
    """The reachable verified address digests could go to, while mail runs."""
    if MAIL_PLATFORM not in ctx.core.settings.running:
        return None
    accounts = ctx.uow.people.accounts_of(ctx.person.id)
    return next(
        (a.external_id for a in accounts if a.platform == MAIL_PLATFORM and a.reachable), None
    )


def menu(ctx: Ctx) -> Message:
    """The menu for the person (said in private: it shows their settings)."""
    t = ctx.t
    person = ctx.person
    times = Times.of(ctx.uow.digests.schedule(person.id))
    day = t(f"digest.day.{times.weekly_day % 7}")
    lines = [
        t("settings_menu.language", language=t(f"language.{t.language}")),
        t("settings_menu.timezone", zone=ctx.core.timezone_of(person)),
        t(
            "settings_menu.digests_paused" if times.paused else "settings_menu.digests",
            daily=clock_time(times.daily_minute),
            day=day,
            weekly=clock_time(times.weekly_minute),
        ),
    ]
    other = "de" if t.language == "en" else "en"
    buttons = [
        Button(
            label=str(t(f"settings_menu.to_{other}")),
            action=ACTION,
            value=f"settings language {other}",
        ),
        Button(
            label=str(t("settings_menu.set_timezone")), action=ACTION, value="settings timezone"
        ),
        Button(label=str(t("settings_menu.set_daily")), action=ACTION, value="digest daily"),
        Button(label=str(t("settings_menu.set_weekly")), action=ACTION, value="digest weekly"),
    ]
    if not times.paused:
        buttons.append(
            Button(label=str(t("settings_menu.pause")), action=ACTION, value="digest off")
        )
    address = _mail_address(ctx)
    if address is not None:
        by_mail = bool(person.digest_by_mail)
        key = "settings_menu.digests_by_mail" if by_mail else "settings_menu.digests_here"
        lines.append(t(key, address=address))
        if by_mail:
            button = Button(
                label=str(t("settings_menu.to_messenger")),
                action=ACTION,
                value="settings digest messenger",
            )
        else:
            button = Button(
                label=str(t("settings_menu.to_mail")), action=ACTION, value="settings digest mail"
            )
        buttons.append(button)
    text = Markup("\n".join(str(line) for line in lines))
    return Message(title=t("settings_menu.title"), text=text, buttons=tuple(buttons))


def on_pressed(ctx: Ctx, value: str) -> None:
    """A button of the menu: the command it names, run as the person who pressed it."""
    name, _, arguments = value.partition(" ")
    if name not in COMMANDS:
        raise UserError("error.button_expired")
    ctx.core.run_command(ctx, name, arguments)
