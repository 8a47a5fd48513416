"""Pinwall's HTTP endpoints: one ASGI app served while `pinwall run` runs."""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.ports import MessengerAdapter
from bot.runtime import Hub
from store.blobs import valid_blob_id
from store.figures import Figures, figures
from store.models import OutboxStatus

log = logging.getLogger(__name__)


def create_app(hub: Hub, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    """The app; adapters add their webhook routes (/slack/events, /telegram/webhook)."""

    async def healthz(request: Request) -> JSONResponse:
        """200 when the database answers and every adapter receives and sends; else 503,
        with what is wrong under "problems" (an adapter's receiving loop that died, say)."""
        database = await hub.call(hub.db.ping)
        adapters = {name: a.healthy() for name, a in hub.adapters.items()}
        problems = {name: problem_of(a) for name, a in hub.adapters.items() if not adapters[name]}
        if not database:
            problems["database"] = "does not answer"
        ok = not problems
        body: dict[str, object] = {
            "status": "ok" if ok else "degraded",
            "database": database,
            "adapters": adapters,
        }
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=200 if ok else 503)

    def _read() -> tuple[dict[str, int], datetime | None, Figures]:
        with hub.db.uow() as uow:
            return uow.outbox.counts(), uow.outbox.oldest_pending(), figures(uow.session)

    async def metrics(request: Request) -> Response:
        """Prometheus figures; those of the store are read at each scrape."""
        counts, oldest, found = await hub.call(_read)
        m, now = hub.metrics, hub.clock.now()

        def age(since: datetime | None) -> float:
            return max((now - since).total_seconds(), 0.0) if since else 0.0

        for status in OutboxStatus:
            m.queue_depth.labels(status.value).set(counts.get(status.value, 0))
        m.oldest_pending.set(age(oldest))
        for name, adapter in hub.adapters.items():
            m.adapter_up.labels(name).set(1 if adapter.healthy() else 0)
        m.feeds_failing.set(found.feeds_failing)
        m.feed_failing_seconds.set(age(found.oldest_failure))
        m.proposals_pending.set(found.proposals_pending)
        m.proposal_waiting_seconds.set(age(found.oldest_proposal))
        return Response(m.render(), media_type="text/plain; version=0.0.4")

    async def files(request: Request) -> Response:
        """A stored file, for whoever holds a valid signed link (messengers fetch these)."""
        blob_id = request.path_params["blob_id"]
        name = request.path_params["name"]
        if hub.blobs is None or hub.signer is None or not valid_blob_id(blob_id):
            return PlainTextResponse("not found", status_code=404)
        refusal = hub.signer.check(
            blob_id,
            request.query_params.get("exp", ""),
            request.query_params.get("sig", ""),
            now=hub.clock.now(),
        )
        if refusal is not None:
            log.warning(
                "refused %s file link for %s from %s",
                refusal,
                blob_id,
                request.client.host if request.client else "?",
            )
            return PlainTextResponse(refusal, status_code=403 if refusal == "forged" else 410)

        def _meta() -> str | None:
            with hub.db.uow() as uow:
                blob = uow.blobs.get(blob_id)
                return blob.mime_type if blob else None

        mime = await hub.call(_meta)
        if mime is None or not hub.blobs.exists(blob_id):
            return PlainTextResponse("not found", status_code=404)
        disposition = "inline" if mime.startswith("image/") else "attachment"
        return FileResponse(
            hub.blobs.path(blob_id),
            media_type=mime,
            headers={
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=300",
            },
        )

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/files/{blob_id}/{name}", files),
        *(extra_routes or []),
    ]
    return Starlette(routes=routes)


def problem_of(adapter: MessengerAdapter) -> str:
    """What an unhealthy adapter says is wrong (see bot.ports)."""
    problem = getattr(adapter, "problem", None)
    said = problem() if callable(problem) else None
    return str(said) if said else "not healthy"
