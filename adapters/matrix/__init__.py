"""The Matrix adapter (matrix-nio): companies that host their own messaging.

inbound.py   room events -> Pinwall events (pure)
render.py    neutral messages -> Matrix HTML, numbered choices and reaction prompts (pure)
adapter.py   the client-server API I/O: login, the sync loop, sends, files
settings.py  PINWALL_MATRIX_*

MESSENGER is the package's descriptor (bot.messenger); the SDK is imported only when
the adapter is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.matrix.settings import MatrixSettings
from bot.messenger import Messenger, PlatformLimits, Problem, Rate

if TYPE_CHECKING:
    from adapters.matrix.adapter import MatrixAdapter
    from bot.runtime import Hub


def _build(settings: MatrixSettings, hub: Hub) -> MatrixAdapter:
    from adapters.matrix.adapter import MatrixAdapter

    assert settings.matrix_homeserver is not None
    assert settings.matrix_user_id is not None
    token, password = settings.matrix_access_token, settings.matrix_password
    return MatrixAdapter(
        hub,
        homeserver=settings.matrix_homeserver,
        user_id=settings.matrix_user_id,
        access_token=token.get_secret_value() if token else None,
        password=password.get_secret_value() if password else None,
        member_servers=settings.matrix_member_server_list(),
    )


async def _check(settings: MatrixSettings) -> Sequence[Problem]:
    from adapters.matrix.doctor import check

    return await check(settings)


MESSENGER = Messenger(
    name="matrix",
    display_name="Matrix",
    command_prefix="!pw ",
    settings=MatrixSettings,
    configured=lambda settings: settings.matrix_configured,
    build=_build,
    check=_check,
    # Synapse's default for a bot that is not exempted from its rate limit.
    rate_limits=PlatformLimits(overall=Rate(10, 10), per_dm=Rate(5, 5), per_room=Rate(5, 5)),
    # The card is replaced (m.replace) with its outcome; posts show no like counter.
    decided_in_place=True,
    # A reaction or a typed number in a room is seen by everyone in it.
    presses_seen=True,
)

__all__ = ["MESSENGER"]
