"""Importers that load shop exports (Shopify CSV) into the store, all or nothing."""

from .aggregates import refresh_customer_aggregates
from .deliveries import import_deliveries
from .report import ImportReport
from .shopify import import_checkouts, import_customers, import_orders, import_products
from .zones import zone_for_address

__all__ = [
    "ImportReport",
    "import_checkouts",
    "import_customers",
    "import_deliveries",
    "import_orders",
    "import_products",
    "refresh_customer_aggregates",
    "zone_for_address",
]
