"""GET /metrics: Prometheus text format, from the ledger at scrape time and from this process's counters.

`LedgerCollector` reads `runner.telemetry.ledger_counts` on each scrape, so the numbers are the
ledger's whoever wrote it (the daemon, a cron `lifecycle tick`); the tick-duration histogram and
the provider-error and webhook-event counters are this process's own (`runner.telemetry`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import one_line
from ..store import Store, utc_naive
from ..telemetry import count_webhook_event, ledger_counts
from .base import WebContext

__all__ = ["LedgerCollector", "count_webhook_event", "registry", "routes"]

log = logging.getLogger("lifecycle.web")


class LedgerCollector(Collector):
    """Ledger gauges, read set-based at each scrape; `lifecycle_store_up` is 0 when the store cannot be read."""

    def __init__(self, store: Store, clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("lifecycle_store_up", "1 when the ledger could be read for this scrape, else 0.")
        try:
            with self.store.reading() as session:
                counts = ledger_counts(session, utc_naive(self.clock()))
        except SQLAlchemyError as exc:
            log.warning("metrics: the store is unavailable (%s)", one_line(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        sends = GaugeMetricFamily("lifecycle_sends", "Sends in the ledger, by campaign and status.",
                                  labels=["campaign", "status"])
        for (campaign, status), count in sorted(counts.sends.items()):
            sends.add_metric([campaign, status], count)
        yield sends
        due = GaugeMetricFamily("lifecycle_due_backlog",
                                "Planned sends whose next attempt is due now, by campaign: what the next "
                                "tick has to send.", labels=["campaign"])
        for campaign, count in sorted(counts.due.items()):
            due.add_metric([campaign], count)
        yield due
        evaluated = GaugeMetricFamily("lifecycle_campaign_last_evaluated_timestamp_seconds",
                                      "When each campaign was last evaluated (Unix time).", labels=["campaign"])
        for campaign, moment in sorted(counts.last_evaluated.items()):
            evaluated.add_metric([campaign], moment.replace(tzinfo=dt.UTC).timestamp())
        yield evaluated


def registry(web: WebContext) -> CollectorRegistry:
    """The ledger's gauges plus the process's own instruments (the default registry, which also holds
    prometheus-client's process_* and python_* metrics)."""
    scraped = CollectorRegistry()
    scraped.register(LedgerCollector(web.store, web.clock))
    scraped.register(REGISTRY)
    return scraped


def routes(web: WebContext) -> list[BaseRoute]:
    scraped = registry(web)

    async def metrics(request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))  # text, or OpenMetrics if asked
        body = await run_in_threadpool(encode, scraped)
        return Response(body, headers={"Content-Type": content_type})

    return [Route("/metrics", metrics, methods=["GET"])]
