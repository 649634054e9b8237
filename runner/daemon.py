"""The scheduler daemon: one APScheduler job per enabled campaign, reloaded on SIGHUP."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from . import settings as s
from .app import App
from .campaign_state import record_seen
from .campaigns import Campaign
from .errors import LifecycleError, WebError
from .providers import Provider
from .store import describe_database_error, utc_naive

if TYPE_CHECKING:
    from .web import WebServer

log = logging.getLogger("lifecycle.daemon")
T = TypeVar("T")


class Daemon:
    """Runs campaigns on their schedules. Jobs coalesce missed runs and never overlap: one worker
    thread runs them one at a time, which also keeps a single writer on a SQLite store.

    Campaigns that share a schedule are one job, evaluated together in one tick, so that their
    policy priorities decide which of them a customer gets first."""

    def __init__(self, app: App, clock: Callable[[], dt.datetime]) -> None:
        self.app = app
        self.clock = clock
        self.stopping = threading.Event()
        self.campaigns: dict[str, Campaign] = {}
        self.provider: Provider | None = None
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=app.settings[s.DEFAULT_TIMEZONE],
        )

    def load(self) -> None:
        """Validate the campaign set and (re)schedule one job per schedule of enabled campaigns."""
        now = self.clock()
        campaigns = {c.id: c for c in self.app.campaigns(now)}
        with self.app.store.session() as session:  # deployed now, whichever job runs first
            record_seen(session, list(campaigns), utc_naive(now))
            session.commit()
        for job in self.scheduler.get_jobs():
            job.remove()
        self.campaigns = campaigns
        by_schedule: dict[str, list[str]] = defaultdict(list)
        for campaign in campaigns.values():
            by_schedule[campaign.spec.schedule].append(campaign.id)
        for schedule, ids in by_schedule.items():
            trigger = CronTrigger.from_crontab(schedule, timezone=self.app.settings[s.DEFAULT_TIMEZONE])
            # First run right away: whatever fell due while the daemon was down goes out now.
            self.scheduler.add_job(self.run_campaigns, trigger, args=[ids], id=schedule, name=", ".join(ids),
                                   next_run_time=now)
        # On the same single worker as the ticks (one writer on SQLite), but never inside one; at start
        # only when the table is a day old or was never built.
        self.scheduler.add_job(self.refresh_affinity, CronTrigger.from_crontab(
            self.app.settings[s.AFFINITY_SCHEDULE], timezone=self.app.settings[s.DEFAULT_TIMEZONE]),
            id="refresh-affinity", name="product affinity", kwargs={"only_if_stale": False})
        self.scheduler.add_job(self.refresh_affinity, id="refresh-affinity-if-stale", name="product affinity",
                               kwargs={"only_if_stale": True}, next_run_time=now)
        interval = self.app.settings[s.DISPATCH_INTERVAL]
        if interval and campaigns:
            # Between schedules, and on a worker that found a campaign being evaluated elsewhere: send
            # what is planned and due, so that every worker shares the sending.
            self.scheduler.add_job(self.dispatch_due, IntervalTrigger(seconds=interval), id="dispatch",
                                   name="dispatch due sends")
        log.info("scheduled %d campaign(s): %s", len(campaigns), ", ".join(sorted(campaigns)) or "none")

    def reload(self) -> None:
        """SIGHUP: an invalid campaign set is refused and the running one is kept."""
        try:
            self.load()
        except LifecycleError as exc:
            log.error("reload refused, keeping the previous campaigns: %s", exc)

    def run_campaigns(self, campaign_ids: list[str]) -> None:
        campaigns = [self.campaigns[i] for i in campaign_ids if i in self.campaigns]
        if not campaigns or self.stopping.is_set() or self.provider is None:
            return
        provider = self.provider
        report = self._guarded(", ".join(campaign_ids), lambda: self.app.tick(
            self.clock(), campaigns, provider, should_stop=self.stopping.is_set))
        if report is None:
            return
        for row in report.rows():
            deferred, skipped = (" ".join(f"{k}={v}" for k, v in row[kind].items()) for kind in ("deferred", "skipped"))
            # One line per campaign, also when another worker was evaluating it (the note says so).
            log.info("tick campaign=%s due=%d sent=%d failed=%d retrying=%d deferred=[%s] skipped=[%s] evaluated=%s%s",
                     row["campaign"], row["due"], row["sent"], row["failed"], row["retrying"], deferred, skipped,
                     "yes" if row["evaluated"] else "no", f" ({row['note']})" if row["note"] else "")

    def dispatch_due(self) -> None:
        """The dispatch job: send what is due of every loaded campaign; one log line per campaign that sent."""
        campaigns = list(self.campaigns.values())
        if not campaigns or self.stopping.is_set() or self.provider is None:
            return
        provider = self.provider
        counts = self._guarded("dispatch", lambda: self.app.dispatch_due(
            self.clock(), campaigns, provider, should_stop=self.stopping.is_set))
        for campaign_id, c in (counts or {}).items():
            if c["sent"] or c["failed"] or c["retrying"]:
                log.info("dispatch campaign=%s sent=%d failed=%d retrying=%d", campaign_id, c["sent"], c["failed"],
                         c["retrying"])

    def _guarded(self, names: str, job: Callable[[], T]) -> T | None:
        """Run a job's work; an error is logged in one line and the job's other runs go on."""
        try:
            return job()
        except LifecycleError as exc:
            log.error("campaign(s) %s: %s", names, exc)
        except SQLAlchemyError as exc:  # one line: SQLAlchemy's own text carries the SQL and its parameters
            log.error("campaign(s) %s: %s", names, describe_database_error(exc).with_hint())
            log.debug("campaign(s) %s: the database error in full", names, exc_info=True)
        except Exception:  # one failing job must not stop the others
            log.exception("campaign(s) %s failed", names)
        return None

    def refresh_affinity(self, only_if_stale: bool) -> None:
        """The nightly jobs on the same schedule and worker: the product-affinity rebuild, then the VIP
        threshold `milestone`'s `segment: vip` reads. Each is timed and logged; a failure is logged in one
        line and the previous table or threshold stays in effect."""
        self._nightly("product affinity", "rebuilt", self.app.refresh_affinity, only_if_stale)
        self._nightly("VIP threshold", "recorded", self.app.refresh_vip_threshold, only_if_stale)

    def _nightly(self, what: str, done: str, job: Callable[..., bool], only_if_stale: bool) -> None:
        started = time.perf_counter()
        try:
            ran = job(self.clock(), only_if_stale=only_if_stale)
        except (LifecycleError, SQLAlchemyError) as exc:
            detail = exc if isinstance(exc, LifecycleError) else describe_database_error(exc).with_hint()
            log.error("%s: %s", what, detail)
            return
        if ran:
            log.info("%s %s in %.1f s", what, done, time.perf_counter() - started)

    def stop(self, *_: object) -> None:
        log.info("stopping after the batch in flight")
        self.stopping.set()

    def alive(self) -> bool:
        """True while the scheduler runs and no stop was asked for (the web service's /healthz)."""
        return self.scheduler.running and not self.stopping.is_set()

    def run_forever(self, web: WebServer | None = None) -> None:
        """Schedule the campaigns and serve `web` beside them until SIGTERM; then finish the batch in
        flight, let the web requests in flight finish, and return."""
        self.app.store.check()
        self.load()
        self.provider = self.app.provider()
        try:
            if web is not None:
                web.start()
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
            if hasattr(signal, "SIGHUP"):
                signal.signal(signal.SIGHUP, lambda *_: self.reload())
            self.scheduler.start()
            log.info("running; SIGHUP reloads campaigns, SIGTERM stops")
            try:
                while not self.stopping.wait(1.0):
                    if web is not None and not web.alive():
                        raise WebError("the web service stopped unexpectedly; stopping the scheduler too",
                                       "run again with --verbose to see why, or set "
                                       "LIFECYCLE_SERVE_WITH_DAEMON=false and run `lifecycle serve` apart")
            finally:
                self.stopping.set()
                self.scheduler.shutdown(wait=True)
        finally:
            if web is not None:
                web.stop()
            self.provider.close()
            log.info("stopped")
