"""Importing Shopify CSV exports (customers, orders, products, abandoned checkouts) into the store, all or nothing.

Each import streams its file through the shared reader, validates every row and writes in
chunks inside ONE transaction: bad rows raise one DataImportError listing each (file, row,
column, reason, hint) and the transaction is rolled back, so the store is left exactly as it
was. Rows are keyed (customers by Customer ID, else email; orders by Id, else Name; products
by SKU; checkouts by Id), and a row whose values match the store is not written at all, so importing a file
twice changes nothing.
"""

from .checkouts import import_checkouts
from .customers import import_customers
from .orders import import_orders
from .products import import_products

__all__ = ["import_checkouts", "import_customers", "import_orders", "import_products"]
