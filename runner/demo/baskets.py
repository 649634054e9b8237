"""What the demo shop's customers put in their baskets: their favourite, and what goes with it."""

from __future__ import annotations

import random

from .catalogue import COFFEES, COLOMBIA, DRIPPER, ETHIOPIA, FILTER, GRINDER, KETTLE, MUG, SCALE, STAPLES, TRAVEL_MUG


def basket(rng: random.Random, favourite: int, quantity: int, first: bool, brews_v60: bool) -> list[tuple[int, int]]:
    """1-4 distinct (product, quantity) lines; drippers come with filters, grinders with coffee."""
    lines = [(favourite, quantity)]
    if first:
        r = rng.random()
        if brews_v60 or r < 0.15:
            lines.append((DRIPPER, 1))
            if rng.random() < 0.85:
                lines.append((FILTER, 1))
            if rng.random() < 0.25:
                lines.append((KETTLE, 1))
            elif rng.random() < 0.25:
                lines.append((SCALE, 1))
        elif r < 0.27:
            lines.append((GRINDER, 1))
            if favourite not in COFFEES:
                lines.append((COLOMBIA, 1))
        if len(lines) < 4 and rng.random() < 0.12:
            lines.append((MUG if rng.random() < 0.7 else TRAVEL_MUG, 1))
        return lines
    if rng.random() < 0.15:
        other = STAPLES[rng.randrange(len(STAPLES))]
        if other != favourite:
            lines.append((other, 1))
    if brews_v60 and rng.random() < 0.35:
        lines.append((FILTER, 1 if rng.random() < 0.8 else 2))
    if len(lines) < 4 and rng.random() < 0.04:
        lines.append((GRINDER if rng.random() < 0.3 else MUG if rng.random() < 0.6 else TRAVEL_MUG, 1))
        if lines[-1][0] == GRINDER and favourite not in COFFEES and len(lines) < 4 \
                and all(product != ETHIOPIA for product, _ in lines):
            lines.append((ETHIOPIA, 1))
    return lines


def gift_basket(rng: random.Random) -> list[tuple[int, int]]:
    """A one-off order of equipment only (a present, a new kettle)."""
    r = rng.random()
    if r < 0.4:
        return [(MUG if rng.random() < 0.5 else TRAVEL_MUG, rng.choice((1, 1, 2)))]
    if r < 0.7:
        return [(DRIPPER, 1), (FILTER, 1)]
    if r < 0.85:
        return [(KETTLE, 1)]
    return [(SCALE, 1), (DRIPPER, 1), (FILTER, 1)]
