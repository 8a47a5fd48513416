"""Publishing to outlets: one `Publisher` per configured outlet (see `jobs.outlets.base`).

Each kind is a module `jobs.outlets.<kind>` with `create(spec, context)`; it is imported
only when an outlet of that kind is configured, so an SDK nobody uses is never loaded.
"""

from __future__ import annotations

import importlib

from bot.errors import ConfigError
from bot.outlets import KINDS, OutletSpec
from jobs.outlets.base import OutletContext, Publisher, PublisherFactory


def create_publisher(spec: OutletSpec, context: OutletContext) -> Publisher:
    """The outlet's publisher; a kind this build lacks or a wrong option is a ConfigError."""
    if spec.kind not in KINDS:
        raise ConfigError(f"PINWALL_OUTLETS_{spec.name.upper()}_KIND: unknown kind {spec.kind!r}")
    module_name = f"{__name__}.{spec.kind}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigError(
            f"PINWALL_OUTLETS_{spec.name.upper()}_KIND: {spec.kind} outlets are not part of "
            "this build yet"
        ) from None
    factory: PublisherFactory = module.create
    return factory(spec, context)


__all__ = ["create_publisher"]
