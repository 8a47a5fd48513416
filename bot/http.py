"""Pinwall's HTTP endpoints: one ASGI app served while `pinwall run` runs."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.runtime import Hub
from store.models import OutboxStatus


def create_app(hub: Hub, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    """The app; adapters add their webhook routes (/slack/events, /telegram/webhook)."""

    async def healthz(request: Request) -> JSONResponse:
        database = await hub.call(hub.db.ping)
        adapters = {name: a.healthy() for name, a in hub.adapters.items()}
        ok = database and all(adapters.values())
        return JSONResponse(
            {"status": "ok" if ok else "degraded", "database": database, "adapters": adapters},
            status_code=200 if ok else 503,
        )

    def _queue() -> tuple[dict[str, int], float | None]:
        with hub.db.uow() as uow:
            counts = uow.outbox.counts()
            oldest = uow.outbox.oldest_pending()
        age = (hub.clock.now() - oldest).total_seconds() if oldest else 0.0
        return counts, age

    async def metrics(request: Request) -> Response:
        counts, age = await hub.call(_queue)
        for status in OutboxStatus:
            hub.metrics.queue_depth.labels(status.value).set(counts.get(status.value, 0))
        hub.metrics.oldest_pending.set(age or 0.0)
        return Response(hub.metrics.render(), media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        *(extra_routes or []),
    ]
    return Starlette(routes=routes)
