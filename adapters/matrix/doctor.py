"""What `pinwall doctor` asks the Matrix homeserver: is the access token accepted and
whose is it; with a password, does the homeserver answer and offer password login (the
login itself is left to `pinwall run`: each one makes a device)."""

from __future__ import annotations

from collections.abc import Sequence

from nio import AsyncClient, LoginInfoResponse, WhoamiResponse

from adapters.matrix.client import NETWORK_ERRORS
from adapters.matrix.settings import MatrixSettings
from bot.messenger import Problem


async def check(settings: MatrixSettings) -> Sequence[Problem]:
    assert settings.matrix_homeserver is not None
    assert settings.matrix_user_id is not None
    client = AsyncClient(settings.matrix_homeserver, settings.matrix_user_id)
    try:
        if settings.matrix_access_token is not None:
            client.access_token = settings.matrix_access_token.get_secret_value()
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse):
                return (
                    Problem(
                        "the homeserver does not accept PINWALL_MATRIX_ACCESS_TOKEN "
                        f"({getattr(who, 'status_code', None) or who})",
                        "log in as the bot once and copy its access token again",
                    ),
                )
            if who.user_id != settings.matrix_user_id:
                return (
                    Problem(
                        f"PINWALL_MATRIX_ACCESS_TOKEN belongs to {who.user_id}, "
                        f"not to PINWALL_MATRIX_USER_ID {settings.matrix_user_id}",
                        "set the bot's own token, or its user id",
                    ),
                )
            return ()
        info = await client.login_info()
        if not isinstance(info, LoginInfoResponse):
            return (
                Problem(
                    f"{settings.matrix_homeserver} does not answer as a Matrix homeserver",
                    "check PINWALL_MATRIX_HOMESERVER (the client API's address)",
                ),
            )
        if "m.login.password" not in info.flows:
            return (
                Problem(
                    "the homeserver does not offer password login",
                    "set PINWALL_MATRIX_ACCESS_TOKEN instead of PINWALL_MATRIX_PASSWORD",
                ),
            )
        return ()
    except NETWORK_ERRORS as exc:
        return (
            Problem(
                f"the homeserver {settings.matrix_homeserver} does not answer ({exc})",
                "check PINWALL_MATRIX_HOMESERVER and that this machine reaches it",
            ),
        )
    finally:
        await client.close()
