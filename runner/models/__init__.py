"""The store's tables, by role. Timestamps are naive UTC (plain DateTime columns); money is in minor
units (cents). Importing the package registers every table on SQLModel's metadata (the migrations
compare with it).
"""

from .contacts import ConsentChange, Suppression, SuppressionAction, SuppressionHistory, SuppressionReason
from .derived import ProductAffinity, ReorderForecast, SegmentThreshold
from .events import Event, EventType, NpsResponse, WebhookNonce
from .ledger import JOURNEY_EXITS, CampaignState, CouponCode, Meta, Send, SendStatus, SkipReason, blocked_reason
from .shop import (
    Checkout,
    CheckoutLine,
    Customer,
    CustomerTag,
    Order,
    OrderLine,
    Product,
    birthday_key,
    is_address,
    normalise_email,
)

__all__ = [
    "JOURNEY_EXITS",
    "CampaignState",
    "Checkout",
    "CheckoutLine",
    "ConsentChange",
    "CouponCode",
    "Customer",
    "CustomerTag",
    "Event",
    "EventType",
    "Meta",
    "NpsResponse",
    "Order",
    "OrderLine",
    "Product",
    "ProductAffinity",
    "ReorderForecast",
    "SegmentThreshold",
    "Send",
    "SendStatus",
    "SkipReason",
    "Suppression",
    "SuppressionAction",
    "SuppressionHistory",
    "SuppressionReason",
    "WebhookNonce",
    "birthday_key",
    "blocked_reason",
    "is_address",
    "normalise_email",
]
