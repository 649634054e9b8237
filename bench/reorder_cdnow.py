"""How well `predicted_reorder` predicts the next order on the CDNOW log, against a BG/NBD model.

    pip install -e '.[bench]'
    python bench/reorder_cdnow.py [--log ../shared/data/cdnow/CDNOW_master.txt] [--cutoff 1997-09-30]

The log is imported into a temporary store with `import_transactions`, as `lifecycle import
transactions` does, and the trigger's own forecasts are read from its reorder_forecast table. For the
customers with at least --orders orders by the cut-off, each one's last order then gives the
expected next order E; the reminder goes out at E - --before. The figures: where their next order
actually fell (before the reminder, in windows after it, later, or not by the end of the log), for
the trigger's estimator (the mean interval), the median of the customer's own intervals, and one
fixed cycle for everyone (the median of the mean intervals, as a per-product cycle would guess).

The BG/NBD model (Fader, Hardie and Lee 2005) is fitted by maximum likelihood on every customer's
calibration history (repeat purchases on distinct days, in weeks), with scipy: its expected purchases
in the same windows, its P(alive) at the cut-off, and its expected purchases over the hold-out period
against the actual ones. lifetimes (unmaintained since 2020) and btyd (a 2022 beta) are not kept up;
pymc-marketing brings PyMC and PyTensor for a four-parameter fit; the likelihood is twenty lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from runner.durations import parse_duration  # noqa: E402
from runner.importers.transactions import import_transactions  # noqa: E402
from runner.models import Order, ReorderForecast  # noqa: E402
from runner.store import Store  # noqa: E402

DAY = dt.timedelta(days=1)
WEEK_DAYS = 7.0
AFTER = (dt.timedelta(days=3), dt.timedelta(days=14), dt.timedelta(days=30))  # windows after the reminder


Orders = dict[int, list[tuple[dt.datetime, int]]]


def load(log: Path) -> tuple[Orders, dict[int, tuple[int, dt.datetime]]]:
    """Each customer's orders (instant, id) in order, and each order's forecast (orders counted, expected
    next order) as the store keeps it."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{Path(folder) / 'cdnow.db'}")
        try:
            store.init()
            import_transactions(store, log, default_zone=ZoneInfo("UTC"), now=dt.datetime(2000, 1, 1),
                                shop_currency="USD")
            with store.engine.connect() as conn:
                orders: Orders = defaultdict(list)
                for customer, placed, order in conn.execute(select(Order.customer_id, Order.placed_at, Order.id)):
                    orders[customer].append((placed, order))
                forecasts = {order: (count, expected) for order, count, expected in conn.execute(
                    select(ReorderForecast.order_id, ReorderForecast.orders, ReorderForecast.expected_at))}
        finally:
            store.close()
    return {customer: sorted(rows) for customer, rows in orders.items()}, forecasts


# ---------------------------------------------------------------- BG/NBD

def bgnbd_fit(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> tuple[float, float, float, float]:
    """Maximum likelihood r, alpha, a, b (Fader, Hardie and Lee 2005, equation 6)."""
    def negative_ll(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        alive = betaln(a, b + x) - betaln(a, b) + common - (r + x) * np.log(alpha + big_t)
        dropped = np.where(x > 0, betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b)
                           + common - (r + x) * np.log(alpha + t_x), -np.inf)
        return -float(np.logaddexp(alive, dropped).sum())
    fit = minimize(negative_ll, np.log([0.5, 5.0, 0.8, 2.5]), method="Nelder-Mead",
                   options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})
    r, alpha, a, b = np.exp(fit.x)
    return float(r), float(alpha), float(a), float(b)


def bgnbd_p_alive(params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    ratio = np.where(x > 0, a / (b + np.maximum(x, 1) - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x), 0.0)
    return 1.0 / (1.0 + ratio)


def bgnbd_expected(params: tuple[float, ...], t: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                   big_t: np.ndarray) -> np.ndarray:
    """Expected purchases in the `t` weeks after the cut-off, given each history (equation 10)."""
    r, alpha, a, b = params
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1,
                                                                           t / (alpha + big_t + t))
    return head * tail * bgnbd_p_alive(params, x, t_x, big_t)


# ---------------------------------------------------------------- the report

def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:5.1f} %" if whole else "    -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, default=ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt")
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, default=dt.date(1997, 9, 30))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(1998, 6, 30))
    parser.add_argument("--orders", type=int, default=3, help="K: orders by the cut-off, at least")
    parser.add_argument("--before", type=parse_duration, default=dt.timedelta(days=3))
    args = parser.parse_args()
    cutoff = dt.datetime.combine(args.cutoff, dt.time()) + DAY  # the whole cut-off day is calibration
    end = dt.datetime.combine(args.end, dt.time()) + DAY

    orders, forecasts = load(args.log)
    print(f"{sum(map(len, orders.values())):,} orders of {len(orders):,} customers; "
          f"calibration to {args.cutoff}, hold-out to {args.end} ({(end - cutoff).days} days)")

    # BG/NBD on every customer's calibration history: purchases merged per day, in weeks
    histories = []
    for customer, rows in orders.items():
        days = sorted({placed for placed, _ in rows if placed < cutoff})
        if days:
            histories.append((customer, len(days) - 1, (days[-1] - days[0]).days / WEEK_DAYS,
                              (cutoff - days[0]).days / WEEK_DAYS))
    x_all, tx_all, t_all = (np.array([h[i] for h in histories], dtype=float) for i in (1, 2, 3))
    params = bgnbd_fit(x_all, tx_all, t_all)
    print("BG/NBD fitted on {:,} customers: r={:.3f} alpha={:.3f} a={:.3f} b={:.3f}".format(len(histories), *params))
    row_of = {h[0]: i for i, h in enumerate(histories)}

    # the trigger's population: at least K orders by the cut-off
    population = []
    for customer, rows in orders.items():
        before_cut = [placed for placed, _ in rows if placed < cutoff]
        if len(before_cut) < args.orders:
            continue
        last = before_cut[-1]
        # the forecast of the last order by then (of two the same day, the later id: the engine's last order)
        count, expected = forecasts[max(order for placed, order in rows if placed == last)]
        mean = (last - before_cut[0]) / (len(before_cut) - 1)
        assert expected == last + dt.timedelta(seconds=int(mean.total_seconds())) and count == len(before_cut)
        gaps = [b - a for a, b in itertools.pairwise(before_cut)]
        following = next((placed for placed, _ in rows if placed >= cutoff), None)
        population.append((customer, last, mean, statistics.median(gaps), following))
    fixed = statistics.median(mean for _, _, mean, _, _ in population)
    print(f"\n{len(population):,} customers with {args.orders} orders or more by the cut-off; "
          f"their mean interval: median {fixed.days} days")

    estimators = {"mean interval (the trigger)": lambda last, mean, median: last + mean,
                  "median interval": lambda last, mean, median: last + median,
                  f"one cycle for all ({fixed.days} d)": lambda last, mean, median: last + fixed}
    for name, estimate in estimators.items():
        due = [(c, estimate(last, mean, median) - args.before, nxt) for c, last, mean, median, nxt in population]
        gone = sum(1 for _, at, _ in due if at < cutoff)
        ahead = [(c, at, nxt) for c, at, nxt in due if at >= cutoff and at < end]
        print(f"\n{name}: {len(due):,} forecasts, {gone:,} reminders due before the cut-off, "
              f"{len(ahead):,} due in the hold-out")
        if not ahead:
            continue
        early = sum(1 for _, at, nxt in ahead if nxt is not None and nxt < at)
        never = sum(1 for _, at, nxt in ahead if nxt is None or nxt >= end)
        print(f"  next order before the reminder   {pct(early, len(ahead))} (cancelled it)")
        sent = [(c, at, nxt) for c, at, nxt in ahead if nxt is None or nxt >= at]  # not cancelled by an order
        rows = np.array([row_of[c] for c, _, _ in sent])
        x, t_x, big_t = x_all[rows], tx_all[rows], t_all[rows]
        start = np.array([(at - cutoff).days / WEEK_DAYS for _, at, _ in sent])
        print(f"  reminders sent                   {len(sent):,}; of them, next order:")
        for after in AFTER:
            hit = np.array([nxt is not None and nxt < at + after for _, at, nxt in sent])
            model = (bgnbd_expected(params, start + after.days / WEEK_DAYS, x, t_x, big_t)
                     - bgnbd_expected(params, start, x, t_x, big_t))
            print(f"  within {after.days:>2} days                   {pct(hit.sum(), len(sent))}   "
                  f"BG/NBD expects {model.mean():.3f} purchases each in the same days")
        print(f"  not by the end of the log        {pct(never, len(ahead))}")

    rows = np.array([row_of[c] for c, *_ in population])
    x, t_x, big_t = x_all[rows], tx_all[rows], t_all[rows]
    alive = bgnbd_p_alive(params, x, t_x, big_t)
    holdout = bgnbd_expected(params, np.full(len(rows), (end - cutoff).days / WEEK_DAYS), x, t_x, big_t)
    actual = np.array([len({placed for placed, _ in orders[c] if cutoff <= placed < end}) for c, *_ in population])
    print(f"\nBG/NBD on the same {len(population):,} customers: mean P(alive) at the cut-off {alive.mean():.2f}; "
          f"hold-out purchase days expected {holdout.sum():,.0f}, actual {actual.sum():,}")
    bought = actual > 0
    for label, chosen in (("P(alive) >= 0.5", alive >= 0.5), ("P(alive) <  0.5", alive < 0.5)):
        print(f"  {label}: {chosen.sum():>5,} customers, {pct(bought[chosen].sum(), chosen.sum())} bought "
              f"in the hold-out")


if __name__ == "__main__":
    main()
