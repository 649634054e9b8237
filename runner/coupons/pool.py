"""Pools of imported codes: loading a file into a pool, handing codes out once each, how full each pool is.

Codes are handed out when a send is claimed for delivery (runner/dispatch.py), in the transaction
that is committed before the email is rendered: a send claimed again after a crash finds the code
it got, and a send skipped before that point (unsubscribed since it was planned) takes none.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import case, func, select, update
from sqlmodel import Session

from ..errors import DataImportError, LifecycleError
from ..importers.reader import Export, Row, Sheet, open_sheet, shown
from ..models import CouponCode, Send
from ..sql import dialect_insert, in_ids
from .spec import POOL_NAME

if TYPE_CHECKING:
    from ..campaigns import Campaign

CHUNK = 1000
MAX_CODE_LENGTH = 255  # Shopify's limit
CODE_COLUMNS = ("code", "codes", "discount code", "coupon code", "coupon")
_SAME_CODE = "Shopify matches discount codes whatever their case, so these are one code: keep one of them"
POOL_FILE = Export("list of coupon codes", "give one code a row, in a column named Code or in the first column")


@dataclass(frozen=True)
class PoolImport:
    """What an import did to a pool."""

    pool: str
    added: int
    repeated: int  # rows repeating a code seen earlier in the file
    already: int  # codes the pool held before
    codes: int  # in the pool now
    left: int  # not handed out yet

    def summary(self) -> str:
        ignored = [f"{self.repeated} repeated in the file"] if self.repeated else []
        ignored += [f"{self.already} already in the pool"] if self.already else []
        return (f"Pool {self.pool}: {self.added} code(s) added" + (f" ({', '.join(ignored)}: ignored)" if ignored
                                                                      else "")
                + f"; {self.codes} code(s), {self.left} not handed out yet")


def _codes(sheet: Sheet) -> Iterator[tuple[int, str]]:
    """(row number, code) of every row: the Code column's, or the first column's with the first row a code too."""
    position = sheet.column(*CODE_COLUMNS)
    if position is None:
        position = 0
        first = sheet.header[0].strip()
        if first:
            yield 1, first
    for row in sheet.rows():
        code = row.get(position)
        if problem := _code_problem(code):
            sheet.record(row.problem(position, problem))
            continue
        yield row.number, code


def _code_problem(code: str) -> str | None:
    if not code:
        return "this row has no code"
    if any(char.isspace() for char in code):
        return f"{shown(code)} has a space in it: a discount code is one word"
    if len(code) > MAX_CODE_LENGTH:
        return f"{shown(code)} is longer than {MAX_CODE_LENGTH} characters"
    return None


def import_codes(session: Session, pool: str, path: Path, now: dt.datetime) -> PoolImport:
    """Add a file's codes to a pool, all or nothing; codes repeated in the file or already in the pool are
    counted and ignored, so importing the same file again adds nothing. A code another pool holds is an error,
    and so is a code that differs only in case from another of the file or the store (Shopify's codes ignore case)."""
    if not re.fullmatch(POOL_NAME, pool):
        raise LifecycleError(f"{pool!r} is not a pool name",
                             "name it with letters, digits, - and _ (up to 64 of them), as a campaign names it in "
                             "`coupon: {pool: NAME}`")
    seen: dict[str, tuple[str, int]] = {}  # each code of the file, lower-cased, as first written and its row
    added_rows: dict[str, int] = {}  # the row of each code this import adds
    repeated = already = 0
    insert = dialect_insert(session.get_bind(), CouponCode)
    with open_sheet(path, POOL_FILE) as sheet:
        codes = _codes(sheet)
        while chunk := list(islice(codes, CHUNK)):
            fresh: list[tuple[int, str]] = []
            for number, code in chunk:
                first = seen.setdefault(code.lower(), (code, number))
                if first[1] == number:
                    fresh.append((number, code))
                elif first[0] == code:
                    repeated += 1
                else:
                    sheet.record(Row(sheet, number, []).problem(
                        None, f"{shown(code)} differs only in case from {shown(first[0])} in row {first[1]}",
                        _SAME_CODE))
            held = dict(session.execute(select(CouponCode.code, CouponCode.pool)
                                        .where(CouponCode.code.in_([code for _, code in fresh]))).all())
            for number, code in fresh:
                if code in held and held[code] != pool:
                    sheet.record(Row(sheet, number, []).problem(
                        None, f"{shown(code)} is already in pool {held[code]}",
                        "a code can be handed out by one pool only: remove it from this file"))
            new = [(number, code) for number, code in fresh if code not in held]
            already += sum(1 for _, code in fresh if held.get(code) == pool)
            if new and sheet.clean:
                session.execute(insert.values([{"pool": pool, "code": code, "imported_at": now} for _, code in new])
                                .on_conflict_do_nothing(index_elements=["code"]))
                added_rows.update((code, number) for number, code in new)
        if added_rows:
            _refuse_case_variants(session, sheet, added_rows)
        sheet.finish()  # raises, listing every bad row; the session is rolled back unwritten
    if not seen:
        session.rollback()
        raise DataImportError(str(path), None, None, "the file holds no code", POOL_FILE.hint)
    session.commit()
    status = pool_counts(session, [pool], now - dt.timedelta(days=1)).get(pool, (0, 0, 0))
    return PoolImport(pool, len(added_rows), repeated, already, codes=status[0], left=status[1])


def _refuse_case_variants(session: Session, sheet: Sheet, added_rows: Mapping[str, int]) -> None:
    """Record a problem for each code just added that another code in the store spells with other cases.

    The unique index on `code` tells "SAVE1" from "save1"; Shopify does not. One scan of the table
    (grouped by lower-cased code) finds every such pair, whatever chunk or pool its codes are in."""
    lowered = func.lower(CouponCode.code)
    clashing = select(lowered).group_by(lowered).having(func.count() > 1)
    by_lowered: dict[str, list[tuple[str, str]]] = {}
    for code, pool in session.execute(select(CouponCode.code, CouponCode.pool).where(lowered.in_(clashing))):
        by_lowered.setdefault(code.lower(), []).append((code, pool))
    for spellings in by_lowered.values():
        # The file's own variants were refused as they were read: the others here were in the store before.
        earlier = sorted((code, pool) for code, pool in spellings if code not in added_rows)
        for code, _ in spellings:
            if code in added_rows and earlier:
                sheet.record(Row(sheet, added_rows[code], []).problem(
                    None, f"{shown(code)} differs only in case from {shown(earlier[0][0])}, already in pool "
                          f"{earlier[0][1]}", _SAME_CODE))


def hand_out(session: Session, pool: str, send_ids: Sequence[int], now: dt.datetime) -> dict[int, str]:
    """The code of each send that has or now gets one (send id to code); sends left out found the pool dry.

    The sends that hold no code yet get the pool's next free codes in one statement. On PostgreSQL
    the free codes are locked with FOR UPDATE SKIP LOCKED, so concurrent ticks take disjoint codes
    without waiting; on SQLite the session's BEGIN IMMEDIATE transaction lets one writer in at a time.
    A code is never handed out twice: the UPDATE only takes rows still free, and a send holds at most
    one code (a unique index).
    """
    held = dict(session.execute(select(CouponCode.send_id, CouponCode.code)
                                .where(in_ids(CouponCode.send_id, send_ids))).all())
    wanting = [send_id for send_id in send_ids if send_id not in held]
    if not wanting:
        return held
    free = (select(CouponCode.id).where(CouponCode.pool == pool, CouponCode.send_id.is_(None))
            .order_by(CouponCode.id).limit(len(wanting)).with_for_update(skip_locked=True)
            .cte("free").prefix_with("MATERIALIZED", dialect="postgresql"))
    codes = select(free.c.id, func.row_number().over(order_by=free.c.id).label("n")).subquery("codes")
    sends = (select(Send.id.label("send_id"), func.row_number().over(order_by=Send.id).label("n"))
             .where(in_ids(Send.id, wanting)).subquery("sends"))
    pairs = select(codes.c.id, sends.c.send_id).join(sends, sends.c.n == codes.c.n).subquery("pairs")
    given = session.execute(
        update(CouponCode).where(CouponCode.id == pairs.c.id, CouponCode.send_id.is_(None))
        .values(send_id=pairs.c.send_id, assigned_at=now)
        .returning(CouponCode.send_id, CouponCode.code).execution_options(synchronize_session=False))
    return held | {send_id: code for send_id, code in given}


def pool_counts(session: Session, pools: Sequence[str], since: dt.datetime) -> dict[str, tuple[int, int, int]]:
    """Per pool that holds codes: (codes, not handed out yet, handed out since `since`); one grouped query."""
    rows = session.execute(
        select(CouponCode.pool, func.count(), func.count(case((CouponCode.send_id.is_(None), 1))),
               func.count(case((CouponCode.assigned_at >= since, 1))))
        .where(*([CouponCode.pool.in_(list(pools))] if pools else []))
        .group_by(CouponCode.pool))
    return {pool: (int(total), int(left), int(recent)) for pool, total, left, recent in rows}


def pools_in_use(campaigns: Iterable[Campaign]) -> dict[str, list[str]]:
    """The pools `campaigns` hand out codes from, each with the ids of the campaigns using it."""
    used_by: dict[str, list[str]] = {}
    for campaign in campaigns:
        if campaign.coupon is not None and campaign.coupon.pool is not None:
            used_by.setdefault(campaign.coupon.pool, []).append(campaign.id)
    return used_by


def pool_warning(pool: str, left: int, recent: int, campaigns: Sequence[str], warn_days: int,
                 warn_below: int) -> str | None:
    """Why a pool that `campaigns` use needs codes soon, or None: it is empty, holds fewer codes than it
    handed out in the last `warn_days` days (`recent`), or fewer than `warn_below`."""
    if not campaigns:
        return None
    who = ", ".join(campaigns)
    more = f"import more with `lifecycle coupons import {pool} FILE.csv`"
    if left == 0:
        return (f"coupon pool {pool} is empty: {who} hold(s) their emails back (deferred:no_coupon) and "
                f"skip(s) them once they expire (skipped:no_coupon); {more}")
    if left < recent:
        return (f"coupon pool {pool} has {left} code(s) left, fewer than the {recent} handed out "
                f"in the last {warn_days} day(s) ({who}); {more}")
    if left < warn_below:
        return (f"coupon pool {pool} has {left} code(s) left, fewer than LIFECYCLE_COUPON_WARN_BELOW="
                f"{warn_below} ({who}); {more}")
    return None


def pool_warnings(session: Session, now: dt.datetime, used_by: Mapping[str, Sequence[str]], *, warn_days: int,
                  warn_below: int) -> list[str]:
    """The warning of each pool in use (`used_by`: pool to campaign ids) that runs low or dry.

    What a tick pays does not grow with the pool: per pool in use, the codes handed out lately are
    counted on (pool, assigned_at), and the free codes only up to the number that calls for no warning,
    on the index of free codes."""
    since = now - dt.timedelta(days=warn_days)
    warnings = []
    for pool, campaigns in sorted(used_by.items()):
        recent = session.execute(select(func.count()).where(CouponCode.pool == pool,
                                                            CouponCode.assigned_at >= since)).scalar_one()
        enough = max(recent, warn_below, 1)
        free = (select(CouponCode.id).where(CouponCode.pool == pool, CouponCode.send_id.is_(None))
                .limit(enough).subquery())
        left = session.execute(select(func.count()).select_from(free)).scalar_one()
        if warning := pool_warning(pool, left, recent, campaigns, warn_days, warn_below):
            warnings.append(warning)
    return warnings


@dataclass(frozen=True)
class PoolStatus:
    """How full a pool is, and whether that calls for a warning."""

    pool: str
    codes: int
    left: int
    recent: int  # handed out in the last warn_days days
    campaigns: tuple[str, ...]  # the enabled campaigns that hand out its codes
    warn_days: int
    warn_below: int

    @property
    def warning(self) -> str | None:
        return pool_warning(self.pool, self.left, self.recent, self.campaigns, self.warn_days, self.warn_below)


def pool_status(session: Session, now: dt.datetime, used_by: Mapping[str, Sequence[str]], *, warn_days: int,
                warn_below: int) -> list[PoolStatus]:
    """Every pool the store holds or a campaign uses (`used_by`: pool to campaign ids), by name, counted in full."""
    counts = pool_counts(session, [], now - dt.timedelta(days=warn_days))
    return [PoolStatus(pool, *counts.get(pool, (0, 0, 0)), campaigns=tuple(used_by.get(pool, ())),
                       warn_days=warn_days, warn_below=warn_below)
            for pool in sorted(set(counts) | set(used_by))]
