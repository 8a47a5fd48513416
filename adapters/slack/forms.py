"""The Slack adapter's modals as it opens them and takes their submissions: the reason
modal of Reject / Request changes, "Share to Pinwall group" (the message's files go with
the share), and the propose and settings forms of a bare `/pinwall propose` or
`settings` (adapters/slack/modals.py builds and reads the views, purely). A part of
SlackAdapter (adapter.py), which gives it the client, the hub and the people."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import inbound
from adapters.slack.inbound import Inbound, SlackUser
from adapters.slack.modals import (
    form_submission,
    form_view,
    may_comment,
    postable_groups_of,
    propose_form,
    said,
    share_metadata,
    share_modal,
)
from adapters.slack.render import reason_modal
from bot.home import home_of
from bot.i18n import Translator, normalize_language
from bot.proposals import decides_now
from bot.runtime import Hub

log = logging.getLogger(__name__)

PLATFORM = "slack"


class SlackForms:
    """The modal half of SlackAdapter (its attributes and `user`/`_take` are the
    adapter's)."""

    hub: Hub
    client: AsyncWebClient
    _modal_key: bytes

    async def user(self, user_id: str) -> SlackUser | None:
        raise NotImplementedError

    async def _take(self, found: Inbound | None) -> None:
        raise NotImplementedError

    async def _ask(self, found: Inbound) -> bool:
        """Opens the reason modal for a Reject / Request changes press (or the comment
        modal for Comment); False where the person may not decide on it now (or read the
        post) or it could not open (no trigger, expired, Slack down): then the press is
        recorded and the core answers or asks by message."""
        assert found.button is not None
        user = await self.user(found.user_id)
        if user is None or user.is_bot or user.deleted or not found.trigger_id:
            return False
        action, value, _ref = found.button
        if action == "item.comment":
            # In the direct chat the next message is the comment; in a channel the
            # question would be shown to the asker alone, with no way to answer it there.
            if found.conversation.direct or found.home:
                return False
            if not await self.hub.call(may_comment, self.hub.core, PLATFORM, found.user_id, value):
                return False  # the core answers the press: not theirs to read
        elif not await self.hub.call(decides_now, self.hub.core, PLATFORM, found.user_id, value):
            return False  # the core answers the press: not theirs to decide, or decided
        t = Translator(await self._language(found.user_id, user.locale))
        metadata = inbound.reason_metadata(found, self._modal_key)
        return await self._open(
            found.trigger_id, reason_modal(action, value, metadata, t), "reason"
        )

    async def _open_share(self, found: Inbound) -> bool:
        """Opens the share modal for "Share to Pinwall group"; False where it cannot (no
        trigger, nobody Pinwall knows, no group to post to, Slack refused)."""
        user = await self.user(found.user_id)
        if user is None or user.is_bot or user.deleted or not found.trigger_id:
            return False
        groups = await self.hub.call(postable_groups_of, self.hub.core, PLATFORM, found.user_id)
        if not groups:
            return False  # the core's share flow says how to join a group
        metadata = share_metadata(found.user_id, found.files, self._modal_key)
        if metadata is None:
            return False  # too many files to keep in the modal
        t = Translator(await self._language(found.user_id, user.locale))
        text = found.text or " ".join(f.name for f in found.files)  # what it is about
        view = share_modal(groups, text, metadata, t)
        return await self._open(found.trigger_id, view, "share")

    async def _open_form(self, found: Inbound) -> bool:
        """The propose or settings modal for a bare `/pinwall propose` or `settings`;
        False where the core answers instead (a guest, someone unknown, no outlet)."""
        user = await self.user(found.user_id)
        if user is None or user.trust != "member" or not found.trigger_id:
            return False
        home = await self.hub.call(home_of, self.hub.core, PLATFORM, found.user_id)
        if home is None:
            return False
        outlets = [o.name for o in self.hub.core.settings.outlets.outlets]
        view = form_view(found.command, home, outlets, found.user_id, self._modal_key)
        return view is not None and await self._open(found.trigger_id, view, "form")

    async def _propose(self, body: dict[str, Any]) -> dict[str, str]:
        """A submitted propose modal recorded as `propose`; else what is wrong, by field."""
        form = form_submission(body, self._modal_key)
        if form is None:
            return {}
        user, view_id, _data, values = form
        outlets = {o.name: o for o in self.hub.core.settings.outlets.outlets}
        t = Translator(await self._language(user))
        now = self.hub.clock.now().timestamp()
        submitted, errors = propose_form(values, outlets, t, now)
        if submitted is not None:
            found = said(user, f"view:{view_id}", "propose", "")
            # the form's fields as the press's value, its text as typed: no option parsing
            await self._take(
                replace(
                    found,
                    kind="button",
                    command=None,
                    button=("proposal.form", submitted.value, None),
                    reason=submitted.text,
                )
            )
        return errors

    async def _open(self, trigger_id: str, view: dict[str, Any], what: str) -> bool:
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("Slack: %s modal not opened (%s)", what, exc.response.get("error"))
            return False
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Slack: %s modal not opened (%s)", what, exc)
            return False
        return True

    async def _language(self, user_id: str, locale: str | None = None) -> str:
        """The language Pinwall speaks with this person (their setting, else Slack's
        locale, else the default)."""
        chosen = await self.hub.state.language_of(PLATFORM, user_id)
        return chosen or normalize_language(locale) or self.hub.core.settings.default_language
