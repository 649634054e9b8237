"""The demo shop's catalogue and people: products and how long each lasts, buying cadences, names,
time zones and suppression reasons, as the generator (shop.py) draws from them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..models import SuppressionReason

SHOP_URL = "https://shop.example.com"


@dataclass(frozen=True)
class DemoProduct:
    """One product of the demo shop; `cycle_days` is how long one unit lasts (None: a durable)."""

    sku: str
    name: str
    slug: str
    price_cents: int
    cycle_days: int | None = None

    @property
    def url(self) -> str:
        return f"{SHOP_URL}/products/{self.slug}"

    @property
    def image_url(self) -> str:
        return f"{SHOP_URL}/images/{self.slug}.jpg"


PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct("COFFEE-ETHIOPIA-250G", "Ethiopia Yirgacheffe Coffee, 250 g", "ethiopia-yirgacheffe", 1650, 21),
    DemoProduct("COFFEE-COLOMBIA-250G", "Colombia Huila Coffee, 250 g", "colombia-huila", 1400, 21),
    DemoProduct("COFFEE-HOUSE-1KG", "House Blend Coffee, 1 kg", "house-blend-1kg", 3900, 56),
    DemoProduct("COFFEE-DECAF-250G", "Swiss Water Decaf Coffee, 250 g", "swiss-water-decaf", 1500, 28),
    DemoProduct("TEA-EARLGREY-100G", "Earl Grey Tea, 100 g", "earl-grey", 950, 30),
    DemoProduct("TEA-SENCHA-100G", "Japanese Sencha Tea, 100 g", "sencha", 1200, 30),
    DemoProduct("FILTER-V60-100", "V60 Paper Filters, 100 pack", "v60-filters", 600, 50),
    DemoProduct("MUG-STONEWARE", "Stoneware Mug", "stoneware-mug", 1800),
    DemoProduct("MUG-TRAVEL", "Insulated Travel Mug", "travel-mug", 2800),
    DemoProduct("GRINDER-HAND", "Hand Grinder", "hand-grinder", 6900),
    DemoProduct("KETTLE-GOOSENECK", "Gooseneck Kettle", "gooseneck-kettle", 5900),
    DemoProduct("DRIPPER-V60", "V60 Dripper", "v60-dripper", 2400),
    DemoProduct("SCALE-BREW", "Brew Scale", "brew-scale", 4500),
)

# How long one unit of each consumable lasts: what a demo replenishment campaign would use.
REPLENISHMENT_CYCLES: dict[str, dt.timedelta] = {
    p.sku: dt.timedelta(days=p.cycle_days) for p in PRODUCTS if p.cycle_days is not None
}

(ETHIOPIA, COLOMBIA, HOUSE, DECAF, EARLGREY, SENCHA, FILTER,
 MUG, TRAVEL_MUG, GRINDER, KETTLE, DRIPPER, SCALE) = range(len(PRODUCTS))
COFFEES = (ETHIOPIA, COLOMBIA, HOUSE, DECAF)
STAPLES = (ETHIOPIA, COLOMBIA, HOUSE, DECAF, EARLGREY, SENCHA)
FAVOURITE_WEIGHTS = (28, 28, 18, 8, 10, 8)
# Days one unit of a customer's favourite lasts them: coffee drinkers reorder every 3-6 weeks.
CADENCE_DAYS = {ETHIOPIA: (21, 42), COLOMBIA: (21, 42), HOUSE: (42, 70), DECAF: (24, 45),
                 EARLGREY: (28, 49), SENCHA: (28, 49)}

FIRST_NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Sofia", "Mateo", "Amelia",
    "Leo", "Hannah", "Jonas", "Chloé", "Zoë", "José", "Łukasz", "Björn", "Siobhán", "Søren",
    "Aiko", "Ren", "Priya", "Arjun", "Fatima", "Omar", "Grace", "Henry", "Isla", "Jack", "Nora",
    "Felix", "Clara", "Max", "Lena", "Ana", "Diego", "Mei", "Kai",
)
LAST_NAMES = (
    "Smith", "Johnson", "Brown", "Garcia", "Müller", "Schmidt", "Kowalski", "Nowak", "O'Brien",
    "Murphy", "Tanaka", "Sato", "Nguyen", "Kim", "Rossi", "Dubois", "Martínez", "Núñez", "Jensen",
    "Andersson", "Taylor", "Wilson", "Walker", "Patel", "Singh", "Cohen", "Silva", "Novák",
    "Wójcik", "Fischer",
)
TIME_ZONES: tuple[str | None, ...] = (
    None, "UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
    "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
)
TIME_ZONE_WEIGHTS = (30, 6, 12, 12, 14, 10, 6, 5, 5)
SUPPRESSION_REASONS = (SuppressionReason.UNSUBSCRIBED, SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED)
SUPPRESSION_WEIGHTS = (60, 30, 10)
