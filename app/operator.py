"""The operator's window: a small server-rendered web page for admins on Pinwall's HTTP
endpoint, and the public newsroom page beside /public/<outlet>.atom.

Login is a one-time link that `admin web` sends an admin in private (store/web_logins.py):
it works once, for ten minutes, and sets a signed session cookie (HttpOnly, SameSite=Strict,
eight hours). Every request checks that the person is still an admin. The page only reads,
except one form: sending dead letters again (with a token tied to the session).
"""

from __future__ import annotations

import hashlib
import hmac
import platform
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import sqlalchemy
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.http import problem_of
from bot.i18n import Translator
from bot.markup import to_plain
from bot.outlets import OutletSettings
from bot.runtime import Hub
from store.models import Feed, Group, OutboxStatus, Person, Proposal, ProposalStatus, Role
from store.web_logins import use_login

COOKIE = "pinwall_operator"
SESSION = timedelta(hours=8)
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
)


class Sessions:
    """Signed session cookies: `<person id>.<expires>.<signature>`."""

    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"pinwall-operator:" + key.encode()).digest()

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:40]

    def make(self, person_id: int, now: float) -> str:
        body = f"{person_id}.{int(now + SESSION.total_seconds())}"
        return f"{body}.{self._sign(body)}"

    def person(self, cookie: str | None, now: float) -> int | None:
        parts = (cookie or "").split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts[:2]):
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(body), parts[2]) or int(parts[1]) < now:
            return None
        return int(parts[0])

    def form_token(self, cookie: str) -> str:
        return self._sign(f"form:{cookie}")


@dataclass(frozen=True)
class Operator:
    handle: str
    language: str
    timezone: str


def _t(language: str) -> Any:
    t = Translator(language)
    return lambda key, **kw: to_plain(t(f"operator.{key}", **kw))


def routes(
    hub: Hub, secret_key: str, outlets: OutletSettings, public_url: str | None
) -> list[Route]:
    sessions = Sessions(secret_key)
    secure = (public_url or "").startswith("https://")

    def operator_of(person_id: int | None) -> Operator | None:
        if person_id is None:
            return None
        with hub.db.uow() as uow:
            person = uow.people.get(person_id)
            if person is None or not person.active or person.role_enum != Role.ADMIN:
                return None
            return Operator(
                person.handle,
                person.language or hub.core.settings.default_language,
                hub.core.timezone_of(person),
            )

    def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = _TEMPLATES.get_template(name).render(**values)
        return HTMLResponse(
            body,
            status_code=status,
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "form-action 'self'; frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    def refused(language: str = "en") -> HTMLResponse:
        t = _t(language)
        return page("refused.html", 403, t=t, language=language)

    async def login(request: Request) -> Response:
        """GET: a page with one button; the button's POST uses the one-time link. A link
        previewer or a mail gateway's scanner fetches the link with GET: it must not use
        the link up (nor get the session cookie)."""
        token = request.path_params["token"]
        if request.method != "POST":
            language = hub.core.settings.default_language
            return page("login.html", t=_t(language), language=language)

        def _use() -> int | None:
            with hub.db.uow() as uow:
                person_id = use_login(uow.session, token, hub.clock.now())
                uow.commit()
                return person_id

        person_id = await hub.call(_use)
        if person_id is None or await hub.call(operator_of, person_id) is None:
            return refused(hub.core.settings.default_language)
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(
            COOKIE,
            sessions.make(person_id, hub.clock.now().timestamp()),
            max_age=int(SESSION.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/admin",
        )
        return response

    def _overview(op: Operator) -> dict[str, Any]:
        t = Translator(op.language)
        now = hub.clock.now()
        # Before the unit of work: on SQLite a second connection would wait for its lock.
        schema = hub.db.current_revision() or "–"
        with hub.db.uow() as uow:
            counts = uow.outbox.counts()
            dead = uow.outbox.listing([OutboxStatus.DEAD], 50)
            failing = uow.session.execute(
                select(Feed, Group.slug)
                .join(Group, Group.id == Feed.group_id)
                .where(Feed.failing_since.is_not(None))
                .order_by(Feed.failing_since)
            ).all()
            pending = uow.session.scalars(
                select(Proposal)
                .where(Proposal.status == ProposalStatus.PENDING)
                .order_by(Proposal.revised_at)
            ).all()
            audit = uow.audit.newest(20)
            people = {
                p.id: p.handle
                for p in uow.session.scalars(
                    select(Person).where(
                        Person.id.in_({a.actor_id for a in audit} | {p.author_id for p in pending})
                    )
                )
            }

            def when(at: datetime | None) -> str:
                return t.datetime(at, op.timezone) if at else "–"

            def age(at: datetime) -> str:
                hours = (now - at).total_seconds() / 3600
                return f"{hours:.0f} h" if hours >= 1 else f"{hours * 60:.0f} min"

            return {
                "adapters": [
                    (name, a.healthy(), None if a.healthy() else problem_of(a))
                    for name, a in hub.adapters.items()
                ],
                "counts": {s.value: counts.get(s.value, 0) for s in OutboxStatus},
                "dead": [
                    (d.id, f"{d.platform}:{d.target}", when(d.created_at), d.attempts, d.last_error)
                    for d in dead
                ],
                "feeds": [
                    (slug, f.title or f.url, f.url, when(f.failing_since), f.failures, f.last_error)
                    for f, slug in failing
                ],
                "proposals": [
                    (
                        f"P{p.id}",
                        p.outlet,
                        people.get(p.author_id or 0, "–"),
                        age(p.revised_at),
                        when(p.expires_at),
                        p.text[:120],
                    )
                    for p in pending
                ],
                "audit": [
                    (when(a.at), people.get(a.actor_id or 0, "–"), a.action, a.subject)
                    for a in audit
                ],
                "versions": {
                    "Pinwall": version("pinwall"),
                    "schema": schema,
                    "Python": platform.python_version(),
                    "SQLAlchemy": sqlalchemy.__version__,
                    "database": hub.db.backend,
                },
            }

    async def overview(request: Request) -> Response:
        cookie = request.cookies.get(COOKIE)
        op = await hub.call(operator_of, sessions.person(cookie, time_now()))
        if op is None or cookie is None:
            return refused(hub.core.settings.default_language)
        values = await hub.call(_overview, op)
        return page(
            "operator.html",
            t=_t(op.language),
            language=op.language,
            operator=op,
            form_token=sessions.form_token(cookie),
            retried=request.query_params.get("retried"),
            **values,
        )

    async def retry(request: Request) -> Response:
        cookie = request.cookies.get(COOKIE)
        person_id = sessions.person(cookie, time_now())
        op = await hub.call(operator_of, person_id)
        form = await request.form()
        if (
            op is None
            or cookie is None
            or not hmac.compare_digest(str(form.get("token", "")), sessions.form_token(cookie))
        ):
            return refused(hub.core.settings.default_language)

        def _retry() -> int:
            with hub.db.uow() as uow:
                n = uow.outbox.retry_dead(hub.clock.now(), None)
                uow.audit.add(
                    at=hub.clock.now(),
                    actor_id=person_id,
                    action="outbox.retried",
                    subject="all",
                    details={"count": n, "via": "web"},
                )
                uow.commit()
                return n

        n = await hub.call(_retry)
        return RedirectResponse(f"/admin?retried={n}", status_code=303)

    def time_now() -> float:
        return hub.clock.now().timestamp()

    async def newsroom(request: Request) -> Response:
        spec = outlets.get(request.path_params["outlet"])
        if spec is None or spec.kind != "newsroom":
            return HTMLResponse("not found", status_code=404)
        language = hub.core.settings.default_language

        def _entries() -> list[tuple[str, str, str | None]]:
            t = Translator(language)
            tz = hub.core.settings.default_timezone
            with hub.db.uow() as uow:
                return [
                    (t.datetime(e.published_at, tz), e.text, e.link)
                    for e in uow.proposals.newsroom_entries(spec.name, 50)
                ]

        entries = await hub.call(_entries)
        response = page(
            "newsroom.html",
            t=_t(language),
            language=language,
            outlet=spec.name,
            entries=entries,
            feed=f"/public/{spec.name}.atom",
        )
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    return [
        Route("/admin/login/{token}", login, methods=["GET", "POST"]),
        Route("/admin", overview),
        Route("/admin/outbox/retry", retry, methods=["POST"]),
        Route("/public/{outlet}", newsroom),
    ]
