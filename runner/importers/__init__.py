"""Importers that load shop exports (Shopify CSV) into the store, all or nothing."""

from .aggregates import refresh_customer_aggregates
from .report import ImportReport
from .shopify import import_customers, import_orders, import_products
from .zones import zone_for_address

__all__ = [
    "ImportReport",
    "import_customers",
    "import_orders",
    "import_products",
    "refresh_customer_aggregates",
    "zone_for_address",
]
