"""Assembles the program: settings, database, core, adapters, HTTP, jobs.

The composition root: the one place that knows every part (see app/__init__.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import uvicorn
from starlette.routing import BaseRoute

from adapters.console.adapter import ConsoleAdapter
from app.handlers import build_handlers
from app.http import create_app
from app.messengers import MESSENGERS, default_limits
from app.operator import routes as operator_routes
from bot.access import CONSOLE_ADMIN
from bot.clock import Clock, SystemClock
from bot.config import Settings, outlet_settings
from bot.core import Core, CoreSettings
from bot.errors import ConfigError
from bot.messenger import Messenger
from bot.ports import MessengerAdapter
from bot.runtime import Hub, keep_on_one_cpu, loop_name
from bot.signing import UrlSigner
from jobs.announcements import AnnouncementJob
from jobs.delivery import DeliveryPolicy, DeliveryWorker
from jobs.digests import DigestJob
from jobs.feeds import FeedPoller
from jobs.fetch import GuardedClient
from jobs.instances import Heartbeat
from jobs.outlets import create_publisher
from jobs.outlets.base import OutletContext
from jobs.outlets.newsroom import feed_routes
from jobs.previews import PreviewWorker
from jobs.publish import PublishJob
from jobs.ratelimit import PlatformLimits, RateLimiter, limits_from_settings
from jobs.retention import EVERY, Retention, RetentionJob
from jobs.scheduler import Tick, Ticker
from store.blobs import BlobStore
from store.db import Database, SchemaTooNew
from store.locks import AlreadyRunning, InstanceLock

log = logging.getLogger("pinwall")

STRAGGLER_AGE = timedelta(seconds=10)
# Seconds the copies of a shared link wait for its preview (PINWALL_LINK_PREVIEWS on).
PREVIEW_WAIT = 2.0


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pinwall").setLevel(logging.INFO)


def open_database(settings: Settings, *, upgrade: bool = True) -> Database:
    try:
        db = Database(settings.database_url)
        if upgrade:
            db.upgrade()
    except SchemaTooNew as exc:
        raise ConfigError(f"PINWALL_DATABASE_URL: {exc}") from None
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(f"PINWALL_DATABASE_URL: cannot open the database ({reason})") from None
    return db


def configured_admins(settings: Settings) -> frozenset[tuple[str, str]]:
    """The accounts that are admins by the settings: PINWALL_ADMINS and the console's
    starting person (see bot.access.admin_by_setting)."""
    return settings.admin_accounts() | {CONSOLE_ADMIN}


def make_core(
    db: Database,
    clock: Clock,
    settings: CoreSettings | None = None,
    messengers: tuple[Messenger[Any, Any], ...] = MESSENGERS,
) -> Core:
    """The Core with this build's handler table, told by the messengers' descriptors how
    each is named, how commands are typed there and which show a room message to one
    person alone: how `pinwall run` makes it, and how the tests and benchmarks do (with
    the CoreSettings they need)."""
    settings = replace(
        settings or CoreSettings(),
        platform_names={m.name: m.display_name for m in messengers},
        command_prefixes={m.name: m.command_prefix for m in messengers},
        room_prefixes={m.name: m.room_prefix for m in messengers if m.room_prefix is not None},
        private_in_room=frozenset(m.name for m in messengers if m.private_in_room),
        shown_in_place=frozenset(m.name for m in messengers if m.shown_in_place),
        decided_in_place=frozenset(m.name for m in messengers if m.decided_in_place),
        menus_by_role=frozenset(m.name for m in messengers if m.menus_by_role),
        presses_seen=frozenset(m.name for m in messengers if m.presses_seen),
    )
    return Core(db, clock, settings, handlers=build_handlers())


def build_core(settings: Settings, db: Database, clock: Clock | None = None) -> Core:
    return make_core(
        db,
        clock or SystemClock(),
        CoreSettings(
            default_language=settings.default_language,
            default_timezone=settings.default_timezone,
            admins=configured_admins(settings),
            public_url=settings.public_url,
            outlets=outlet_settings(settings),
            read_tracking=settings.read_tracking,
            preview_wait=PREVIEW_WAIT if settings.link_previews else 0.0,
            voter_key=settings.secret_key_value(),
            poll_anonymous_minimum=settings.poll_anonymous_minimum,
        ),
        type(settings).MESSENGERS,
    )


def rate_limits(
    settings: Settings | None = None,
    messengers: tuple[Messenger[Any, Any], ...] = MESSENGERS,
) -> dict[str, PlatformLimits]:
    """The messengers' send limits, with pinwall.toml's [rate_limits.NAME] over them."""
    overrides = settings.rate_limits if settings is not None else {}
    return limits_from_settings(default_limits(messengers), overrides)


@dataclass
class Program:
    settings: Settings
    db: Database
    core: Core
    hub: Hub
    worker: DeliveryWorker
    console: ConsoleAdapter | None
    lock: InstanceLock
    routes: list[BaseRoute]  # the messengers' webhooks (/slack/events, /telegram/webhook)
    previews: PreviewWorker | None = None  # link previews, through the guarded client
    # Periodic jobs (digests, feed polls, ...), ticked by APScheduler where the lock is held.
    ticks: list[Tick] = field(default_factory=list)
    # This instance's id (on its claims) and heartbeat; claims of gone ones taken back.
    heartbeat: Heartbeat | None = None
    # Set by SIGTERM (and SIGINT unless a person types into the console): serve() stops.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Where the HTTP endpoints listen, once serve() bound them (port 0 picks a free one).
    address: tuple[str, int] | None = None


def build(settings: Settings) -> Program:
    """The program of these settings (app.config.load_settings: with their messengers),
    every configured messenger's adapter built, nothing started yet."""
    messengers = type(settings).MESSENGERS
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"PINWALL_DATA_DIR: cannot create {settings.data_dir} ({exc.strerror})"
        ) from None
    db = open_database(settings)
    lock = InstanceLock(db)
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        db.dispose()
        raise ConfigError(f"PINWALL_DATABASE_URL: {exc}") from None
    core = build_core(settings, db)
    hub = Hub(
        core,
        blobs=BlobStore(settings.data_dir / "blobs", max_bytes=settings.file_max_mb * 1024 * 1024),
        signer=UrlSigner(settings.secret_key_value()),
    )
    routes: list[BaseRoute] = []
    for messenger in messengers:
        if messenger.is_configured(settings):
            adapter = messenger.make(settings, hub)
            hub.register(adapter)
            routes += messenger.routes(adapter)
    # The console drives a scripted run (it ends the program at the end of its input).
    found = hub.adapters.get("console")
    console = found if isinstance(found, ConsoleAdapter) else None
    heartbeat = Heartbeat(hub, data_dir=settings.data_dir)
    worker = DeliveryWorker(
        hub,
        DeliveryPolicy(
            max_attempts=settings.outbox_max_attempts,
            lease=timedelta(seconds=settings.outbox_lease_seconds),
        ),
        RateLimiter(rate_limits(settings, messengers)),
        instance=heartbeat.id,
    )
    previews = (
        PreviewWorker(
            hub, GuardedClient(allowlist=settings.fetch_allowlist, public_url=settings.public_url)
        )
        if settings.link_previews
        else None
    )
    ticks: list[Tick] = []
    ticks.append(Tick("digests", every=30, run=DigestJob(hub).tick))
    ticks.append(Tick("announcements", every=30, run=AnnouncementJob(hub).tick))
    feeds = FeedPoller(
        hub, GuardedClient(allowlist=settings.fetch_allowlist, public_url=settings.public_url)
    )
    ticks.append(Tick("feeds", every=2, run=feeds.tick))  # free until a feed is due or added

    async def apply_stragglers(now: datetime) -> int:
        """Events recorded (and acknowledged to their messenger) whose applying failed for
        a passing reason are applied here, not only at the next start."""
        return await hub.apply_recorded(received_before=now - STRAGGLER_AGE)

    ticks.append(Tick("inbox", every=STRAGGLER_AGE.total_seconds(), run=apply_stragglers))
    retention = RetentionJob(db, Retention.from_settings(settings), hub.blobs)
    ticks.append(Tick("retention", every=EVERY, run=retention.tick))
    ticks.append(_publish_job(settings, hub).tick())  # approved proposals, to their outlets
    return Program(
        settings, db, core, hub, worker, console, lock, routes, previews, ticks, heartbeat
    )


def _publish_job(settings: Settings, hub: Hub) -> PublishJob:
    """The publishing tick, with a publisher per outlet made now: a wrong outlet setting
    stops the start with one line, not the first publication."""
    context = OutletContext(
        db=hub.db,
        public_url=settings.links_url(),
        data_dir=settings.data_dir,
        fetch_allowlist=settings.fetch_allowlist,
    )
    outlets = hub.core.settings.outlets
    publishers = {spec.name: create_publisher(spec, context) for spec in outlets.outlets}
    return PublishJob(hub, outlets, context, publishers=publishers)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Pinwall handles SIGTERM/SIGINT itself, to drain and stop in order.
        yield


def _bind(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.http_host, settings.http_port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"PINWALL_HTTP_PORT: cannot listen on {settings.http_host}:{settings.http_port} "
            f"({exc.strerror})"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(program: Program) -> int:
    settings, hub, worker = program.settings, program.hub, program.worker
    stop = program.stop
    loop = asyncio.get_running_loop()
    pinned = keep_on_one_cpu(settings.cpu_affinity, sqlite=program.db.is_sqlite)
    if pinned is not None:
        loop.set_default_executor(pinned.free_executor())
        log.info("event loop and database thread on CPU %d (PINWALL_CPU_AFFINITY)", pinned.cpu)
    log.info("event loop: %s", loop_name(loop))
    interactive = program.console is not None and program.console.interactive
    signals = [signal.SIGTERM] + ([] if interactive else [signal.SIGINT])
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    sock = _bind(settings)
    host, port = sock.getsockname()[:2]
    program.address = (host, port)
    routes = list(program.routes)
    outlets = program.core.settings.outlets
    routes += feed_routes(hub, outlets, settings.public_url, settings.links_url())
    # After the feeds: /public/<outlet> (the newsroom page) would take <outlet>.atom too.
    routes += operator_routes(hub, settings.secret_key_value(), outlets, settings.public_url)
    app = create_app(hub, routes)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = _Server(config)
    server_task = asyncio.create_task(server.serve(sockets=[sock]))
    log.info("HTTP endpoints on http://%s:%s (healthz, metrics)", host, port)

    started: list[MessengerAdapter] = []
    worker_task: asyncio.Task[None] | None = None
    previews_task: asyncio.Task[None] | None = None
    ticker_task: asyncio.Task[None] | None = None
    heartbeat_task: asyncio.Task[None] | None = None
    try:
        for adapter in hub.adapters.values():
            await adapter.start()  # a ConfigError here stops Pinwall, cleanly
            started.append(adapter)
        if program.heartbeat is not None:
            # Claims of earlier instances of this home (SQLite: of any) are taken back at
            # once; those of other instances when their heartbeat stops.
            await hub.call(program.heartbeat.start)
            heartbeat_task = asyncio.create_task(program.heartbeat.run(stop))
        recovered = await hub.apply_recorded()
        if recovered:
            log.info("applied %d events recorded before a restart", recovered)
        worker_task = asyncio.create_task(worker.run(stop))
        if program.previews is not None:
            previews_task = asyncio.create_task(program.previews.run(stop))
        if program.ticks:
            ticker = Ticker(program.db, program.core.clock, program.ticks)
            ticker_task = asyncio.create_task(ticker.run(stop))

        if program.console is not None:
            hold = program.core.settings.preview_wait
            if interactive or not hold:
                drain = worker.drain
            else:
                # A line's deliveries include a shared link's copies, which wait for its
                # preview a moment: a script sees them before the next line's output.
                drain = functools.partial(worker.drain, wait_up_to=hold)
            console_task = asyncio.create_task(program.console.run(drain=drain))
            stop_task = asyncio.create_task(stop.wait())
            await asyncio.wait({console_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            stop_task.cancel()
            if console_task.done():
                console_task.result()
                await worker.drain(wait_up_to=10.0)  # end of input: deliver what is left
            else:
                await program.console.stop()
                await console_task
        else:
            await stop.wait()
    finally:
        stop.set()
        if worker_task is not None:
            await worker_task  # finishes the pass in flight
        if previews_task is not None:
            await previews_task  # gives back the fetches in flight
        if ticker_task is not None:
            await ticker_task  # lets the jobs in flight finish
        if heartbeat_task is not None and program.heartbeat is not None:
            await heartbeat_task
            await program.heartbeat.stop()  # after the worker gave back what it claimed
        for adapter in started:
            await adapter.stop()
        server.should_exit = True
        await server_task
        for sig in signals:
            loop.remove_signal_handler(sig)
        hub.close()
        program.lock.release()
        program.db.dispose()
    return 0
