"""The library's front door: one object per configuration that validates, ticks and previews.

The CLI, the daemon and the tests all go through `App`; each of its methods takes `now`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any

from sqlalchemy import select

from . import settings as s
from .asof import holds_orders_after
from .campaign_state import campaign_state, finish_evaluation, record_seen, take_evaluation
from .campaigns import Campaign, load_campaigns
from .context import Shop, build_contexts, sample_context
from .coupons import settings as cs
from .coupons.operations import CouponOperations
from .coupons.preview import PoolPreview
from .dispatch import DeliveryPolicy, dispatch, message_headers
from .engine import Occurrence, find_occurrences, plan, store_time_zones, window_for
from .errors import CampaignError, LifecycleError, Problem
from .models import Customer, Order, OrderLine, SendStatus, SkipReason, normalise_email
from .policies.evaluation import PolicyEvaluation, by_priority
from .policies.loader import with_policies
from .providers import Provider, provider_from_settings
from .providers.base import OutgoingMessage, SendResult
from .recommend import refresh_affinity, refresh_if_stale
from .rendering.templates import RenderedEmail, Renderer
from .reports.campaigns import CampaignResult, campaign_results
from .reports.customers import CustomerFigures, customer_figures, segment_members
from .reports.nps import NpsReport, Period, nps_report
from .reports.rules import segment_rules
from .results import PreviewItem, TickReport
from .segments import SegmentRules
from .segments.thresholds import refresh_vip_threshold
from .settings import Settings
from .simulation.grid import TickGrid
from .simulation.replay import Shape, SimulatedOccurrence, simulate_campaign
from .store import Store, utc_naive
from .telemetry import TICK_DURATION

log = logging.getLogger(__name__)

PREVIEW_BATCH = 500  # occurrences whose contexts are loaded and rendered together


class App(CouponOperations):
    """Validates, ticks, previews and reports for one configuration; the coupon methods come from
    `CouponOperations`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings[s.DATABASE_URL])

    # ------------------------------------------------------------ campaign set

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.settings[s.TEMPLATES_DIR], locale=self.settings[s.SHOP_LOCALE])

    def shop(self, signing_key: bytes | None = None) -> Shop:
        key = signing_key if signing_key is not None else self.store.signing_key(self.settings[s.SECRET_KEY])
        return Shop(name=self.settings[s.SHOP_NAME], url=self.settings[s.SHOP_URL],
                    address=self.settings[s.SHOP_ADDRESS], public_url=self.settings[s.PUBLIC_URL],
                    signing_key=key, default_zone=self.settings[s.DEFAULT_TIMEZONE],
                    currency=self.settings[s.SHOP_CURRENCY], locale=self.settings[s.SHOP_LOCALE],
                    review_url=self.settings[s.REVIEW_URL], coupon_secret=self.settings[cs.COUPON_SECRET].encode())

    @cached_property
    def segment_rules(self) -> SegmentRules:
        """The customer segments' thresholds (LIFECYCLE_SEGMENT_*), for reports and audiences alike."""
        return segment_rules(self.settings, self.settings[s.SHOP_CURRENCY])

    @property
    def default_from(self) -> str:
        return self.settings[s.FROM_ADDRESS]

    def problems(self, now: dt.datetime) -> tuple[list[Campaign], list[Problem]]:
        """Every campaign and every problem with campaign files and the templates they use."""
        campaigns, problems = load_campaigns(self.settings[s.CAMPAIGNS_DIR])
        campaigns, policy_problems = with_policies(self.settings[s.CAMPAIGNS_DIR], campaigns)
        problems.extend(policy_problems)
        shop = self.shop(signing_key=b"validation")
        for campaign in campaigns:
            # With variants, every send renders one of them, never the bare message: check each.
            # A problem in a key the variants share is found once per variant and reported once.
            found: dict[Problem, None] = {}
            # So does a journey: each step renders its own message.
            for variant in campaign.variant_names or [None]:
                for step in campaign.step_numbers or [None]:
                    found.update(dict.fromkeys(self.renderer.check(
                        campaign, sample_context(campaign, shop, now, variant, step), default_from=self.default_from,
                        variant=variant, step=step)))
            problems.extend(found)
        problems.extend(self._coupon_problems(campaigns))
        return campaigns, problems

    def campaigns(self, now: dt.datetime, only: list[str] | None = None, *, enabled: bool = True) -> list[Campaign]:
        """The valid campaign set (refusing an invalid one), filtered to `only` and enabled campaigns."""
        campaigns, problems = self.problems(now)
        if problems:
            raise CampaignError(problems)
        if only:
            known = {c.id for c in campaigns}
            unknown = [c for c in only if c not in known]
            if unknown:
                raise LifecycleError(f"no campaign with id {unknown[0]!r}",
                                     f"campaign ids: {', '.join(sorted(known)) or 'none'}")
            return [c for c in campaigns if c.id in only]
        return [c for c in campaigns if c.spec.enabled or not enabled]

    # ------------------------------------------------------------ ticks

    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(batch_size=self.settings[s.BATCH_SIZE], max_attempts=self.settings[s.MAX_ATTEMPTS],
                              concurrency=self.settings[s.DISPATCH_CONCURRENCY],
                              retry_base=dt.timedelta(seconds=self.settings[s.RETRY_BASE_SECONDS]))

    def tick(self, now: dt.datetime, campaigns: list[Campaign], provider: Provider,
             should_stop: Callable[[], bool] = lambda: False) -> TickReport:
        """Plan every campaign at `now` in priority order, so that policies see each campaign's mail
        before deciding the next one's; then dispatch them in the same order.

        Safe beside other ticks and workers on the same store: a campaign another tick is
        evaluating is not evaluated twice (the report says so), and every tick dispatches.
        """
        now = utc_naive(now)
        self.store.check()
        report = TickReport()
        shop = self.shop()
        with self.store.session() as session:
            record_seen(session, [c.id for c in campaigns], now)
            session.commit()
        with self.store.reading() as session:
            zones = store_time_zones(session)
            as_of = holds_orders_after(session, now)
        policies = PolicyEvaluation(now, shop.default_zone)
        spent: dict[str, float] = {}  # seconds per campaign, planning and dispatch together
        for campaign in by_priority(campaigns):
            if should_stop():
                break
            started = time.perf_counter()  # a duration, not an instant: `now` stays the tick's time
            report.counts[campaign.id] = self._evaluate(campaign, now, shop, zones, report, policies, as_of)
            spent[campaign.id] = time.perf_counter() - started
        for campaign in by_priority(c for c in campaigns if c.id in spent):
            if should_stop():
                break
            started = time.perf_counter()
            report.counts[campaign.id].update(self._dispatch(campaign, now, shop, provider, should_stop))
            spent[campaign.id] += time.perf_counter() - started
        for campaign_id, seconds in spent.items():
            TICK_DURATION.labels(campaign=campaign_id).observe(seconds)
        report.warnings = self.coupon_warnings(now, campaigns)
        for warning in report.warnings:
            log.warning("%s", warning)
        return report

    def dispatch_due(self, now: dt.datetime, campaigns: list[Campaign], provider: Provider,
                     should_stop: Callable[[], bool] = lambda: False) -> dict[str, Counter[str]]:
        """Send whatever of `campaigns` is due for an attempt at `now`, without evaluating them: what
        another worker has planned meanwhile, and retries whose time has come. Counts per campaign."""
        now = utc_naive(now)
        self.store.check()
        shop = self.shop()
        counts: dict[str, Counter[str]] = {}
        for campaign in by_priority(campaigns):
            if should_stop():
                break
            counts[campaign.id] = self._dispatch(campaign, now, shop, provider, should_stop)
        return counts

    def _dispatch(self, campaign: Campaign, now: dt.datetime, shop: Shop, provider: Provider,
                  should_stop: Callable[[], bool]) -> Counter[str]:
        with self.store.session() as session:
            return dispatch(session, campaign, renderer=self.renderer, provider=provider, shop=shop,
                            default_from=self.default_from, now=now, policy=self.policy(), should_stop=should_stop)

    def _evaluate(self, campaign: Campaign, now: dt.datetime, shop: Shop, zones: tuple[str | None, ...],
                  report: TickReport, policies: PolicyEvaluation, as_of: bool) -> Counter[str]:
        """Plan a campaign's due occurrences under its evaluation lease, or note that another tick holds it.
        `as_of`: the store holds orders placed after `now`."""
        with self.store.session() as session:
            evaluation = take_evaluation(session, campaign.id, now)
        if not evaluation.held:
            report.not_evaluated[campaign.id] = evaluation.busy_note()
            return Counter()
        # The two lines bracket the evaluation, so that the logs of several workers show who held it when.
        log.debug("campaign %s: evaluation lease %s taken", campaign.id, evaluation.token)
        completed = False
        try:
            window = window_for(campaign, now, evaluation.state, shop.default_zone, zones, shop.currency,
                                as_of=as_of, segment_rules=self.segment_rules)
            counts = plan(self.store, campaign, window, policies.apply)
            completed = True
        finally:
            with self.store.session() as session:
                finish_evaluation(session, evaluation, now, completed=completed)
            log.debug("campaign %s: evaluation lease %s given back", campaign.id, evaluation.token)
        return counts

    def provider(self) -> Provider:
        return provider_from_settings(self.settings)

    def refresh_affinity(self, now: dt.datetime, *, only_if_stale: bool = False) -> bool:
        """Rebuild the product-affinity table ("often bought with") from the last year's orders, or only
        when it is a day old or was never built; returns whether it did. Not part of a tick: the daemon
        runs it on LIFECYCLE_AFFINITY_SCHEDULE, an orders import after writing, cron users with
        `lifecycle refresh-affinity`."""
        now = utc_naive(now)
        self.store.check()
        with self.store.session() as session:
            if only_if_stale:
                return refresh_if_stale(session, now)
            refresh_affinity(session, now)
            return True

    def refresh_vip_threshold(self, now: dt.datetime, *, only_if_stale: bool = False) -> bool:
        """Record the VIP spend threshold `milestone`'s `segment: vip` reads (runner/segments/thresholds.py), or
        only when the last is a day old; returns whether it did. Like the affinity rebuild, never part of a tick."""
        self.store.check()
        with self.store.session() as session:
            return refresh_vip_threshold(session, utc_naive(now), self.segment_rules, only_if_stale=only_if_stale)

    # ------------------------------------------------------------ reports

    def customer_figures(self, at: dt.datetime, period: dt.timedelta, rules: SegmentRules) -> CustomerFigures:
        """The shop's retention figures and segments as of `at`; reads the store and writes nothing."""
        self.store.check()
        with self.store.reader.connect() as conn:
            return customer_figures(conn, utc_naive(at), period=period, rules=rules,
                                    currency=self.settings[s.SHOP_CURRENCY])

    def segment_members(self, at: dt.datetime, segment: str) -> Iterator[tuple[int, str]]:
        """(id, email) of each customer in `segment` as of `at`, as `customer_figures` counts them."""
        self.store.check()
        with self.store.reader.connect() as conn:
            yield from segment_members(conn, utc_naive(at), segment, rules=self.segment_rules)

    def campaign_results(self, since: dt.datetime, until: dt.datetime, window: dt.timedelta,
                         campaign_ids: list[str] | None = None) -> list[CampaignResult]:
        """What each campaign's emails achieved in [since, until], per variant where a campaign has
        variants; reads the store and writes nothing."""
        self.store.check()
        # The files only order each campaign's variants (the first is the control): a report still
        # runs, with variants ordered by name, when the campaign set has problems.
        campaigns, _ = load_campaigns(self.settings[s.CAMPAIGNS_DIR])
        with self.store.reader.connect() as conn:
            return campaign_results(conn, utc_naive(since), utc_naive(until), window=window,
                                    campaign_ids=campaign_ids,
                                    variant_order={c.id: c.variant_names for c in campaigns})

    def nps_report(self, since: dt.datetime, until: dt.datetime, period: Period) -> NpsReport:
        """Net Promoter Score per period of the answers first given in [since, until); reads the store
        and writes nothing."""
        self.store.check()
        with self.store.reader.connect() as conn:
            return nps_report(conn, utc_naive(since), utc_naive(until), period)

    def simulate(self, grid: TickGrid, campaigns: list[Campaign], *,
                 assume_consent: bool = False) -> Iterator[SimulatedOccurrence]:
        """What ticks at every instant of `grid` would have recorded from an empty ledger, campaign by
        campaign (with `assume_consent`, as if every customer had marketing consent). Reads the store
        through a read-only connection: writes nothing, sends nothing."""
        store = Store(self.settings[s.DATABASE_URL], read_only=True)
        try:
            store.check()
            with store.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn = conn.execution_options(postgresql_readonly=True)
                shape = Shape(self.settings[s.DEFAULT_TIMEZONE], store_time_zones(conn),
                              self.settings[s.SHOP_CURRENCY], self.segment_rules)
                for campaign in campaigns:
                    yield from simulate_campaign(conn, campaign, grid, shape, assume_consent=assume_consent)
        finally:
            store.close()

    # ------------------------------------------------------------ preview and test sends

    def preview(self, now: dt.datetime, campaigns: list[Campaign],
                customer: str | None = None) -> Iterator[PreviewItem]:
        """What a tick at `now` would send, rendered; reads the store and writes nothing."""
        now = utc_naive(now)
        self.store.check()
        shop = self.shop()
        with self.store.reading() as session:
            customer_id = self._customer_id(session, customer) if customer else None
            zones = store_time_zones(session)
            policies = PolicyEvaluation(now, shop.default_zone)
            as_of = holds_orders_after(session, now)
            for campaign in by_priority(campaigns):
                window = window_for(campaign, now, campaign_state(session, campaign.id), shop.default_zone, zones,
                                    shop.currency, as_of=as_of, segment_rules=self.segment_rules)
                found = find_occurrences(session, campaign, window, customer_id)
                pool = PoolPreview.of(session, campaign, now + self.policy().retry_base)
                while chunk := list(islice(found, PREVIEW_BATCH)):
                    chunk = policies.apply(session, campaign, chunk)
                    if pool is not None:
                        chunk = pool.share(chunk)
                    to_render = [o for o in chunk if o.status is SendStatus.PLANNED
                                 and o.skip_reason is not SkipReason.NO_COUPON]
                    rendered = dict(zip((o.occurrence_key for o in to_render),
                                        self._render_all(session, campaign, to_render, shop, now,
                                                         pool.placeholders if pool else None), strict=True))
                    for occ in chunk:
                        yield rendered.get(occ.occurrence_key) or PreviewItem(occ, None)

    def _render_all(self, session: Any, campaign: Campaign, items: list[Occurrence], shop: Shop,
                    now: dt.datetime, pool_codes: dict[str, str] | None = None) -> list[PreviewItem]:
        out: list[PreviewItem] = []
        contexts = build_contexts(session, campaign, items, shop, now, pool_codes)
        for occ, context in zip(items, contexts, strict=True):
            headers = message_headers(campaign.id, None, context["unsubscribe_url"])
            try:
                email = self.renderer.render(campaign.message_for(occ.variant, occ.step), context,
                                             default_from=self.default_from)
            except LifecycleError as exc:
                out.append(PreviewItem(occ, None, exc.with_hint(), headers))
                continue
            out.append(PreviewItem(occ, email, None, headers))
        return out

    # ------------------------------------------------------------ test sends

    def send_test(self, now: dt.datetime, campaign: Campaign, to: str, provider: Provider,
                  customer: str | None = None, variant: str | None = None,
                  step: int | None = None) -> tuple[SendResult, str]:
        """Render one campaign's email for a customer (or sample data) and send it to `to`; no ledger row.

        A campaign with variants sends `variant`, or else the customer's own (the control's with sample data);
        a journey sends its `step`, or else its first."""
        now = utc_naive(now)
        self.store.check()
        if variant is not None and variant not in campaign.variant_names:
            raise LifecycleError(f"campaign {campaign.id!r} has no variant {variant!r}",
                                 f"its variants: {', '.join(campaign.variant_names) or 'none'}")
        if step is not None and step not in campaign.step_numbers:
            raise LifecycleError(f"campaign {campaign.id!r} has no step {step}",
                                 f"it has {len(campaign.step_numbers)} step(s)" if campaign.step_numbers
                                 else "only a journey (a campaign with `steps:`) has steps; leave out --step")
        shop = self.shop()
        with self.store.reading() as session:
            if customer:
                customer_id = self._customer_id(session, customer)
                # a key of the trigger's own shape, for the facts a template may read from it
                item = _TestItem(customer_id=customer_id, due_at=now,
                                 occurrence_key=campaign.trigger.sample_key(customer_id, now, shop.currency),
                                 step=step)
                item.variant = variant = variant or campaign.variant_for(item.customer_id)
                item.order_id, item.order_line_id = self._latest_order(session, item.customer_id)
                context = build_contexts(session, campaign, [item], shop, now)[0]
            else:
                variant = variant or next(iter(campaign.variant_names), None)
                context = sample_context(campaign, shop, now, variant, step)
        rendered = self.renderer.render(campaign.message_for(variant, step), context, default_from=self.default_from)
        rendered = RenderedEmail(subject=f"[TEST] {rendered.subject}", preheader=rendered.preheader,
                                 html=rendered.html, text=rendered.text, from_=rendered.from_,
                                 reply_to=rendered.reply_to)
        headers = message_headers(campaign.id, None, context["unsubscribe_url"]) | {"X-Lifecycle-Test": "yes"}
        message = OutgoingMessage.from_rendered(
            rendered, idempotency_key=f"test-{campaign.id}-{now:%Y%m%d%H%M%S}", campaign_id=campaign.id,
            send_id=None, to=to, headers=headers, date=now.replace(tzinfo=dt.UTC), is_test=True)
        return provider.send_batch([message])[0], rendered.subject

    @staticmethod
    def _customer_id(session: Any, email: str) -> int:
        found = session.execute(select(Customer.id).where(Customer.email == normalise_email(email))).scalar()
        if found is None:
            raise LifecycleError(f"no customer with email {email!r} in the store",
                                 "check the address, or import the customer first")
        return int(found)

    @staticmethod
    def _latest_order(session: Any, customer_id: int) -> tuple[int | None, int | None]:
        order_id = session.execute(select(Order.id).where(Order.customer_id == customer_id)
                                   .order_by(Order.placed_at.desc()).limit(1)).scalar()
        line_id = session.execute(select(OrderLine.id).where(OrderLine.order_id == order_id)
                                  .order_by(OrderLine.id).limit(1)).scalar() if order_id else None
        return order_id, line_id


@dataclass
class _TestItem:
    customer_id: int
    due_at: dt.datetime
    occurrence_key: str
    order_id: int | None = None
    order_line_id: int | None = None
    reason: str = "test send"
    variant: str | None = None
    step: int | None = None
