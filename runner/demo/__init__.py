"""The demo shop: synthetic data (`shop` loads what `generator` draws, with `baskets` and `catalogue`),
abandoned checkouts (`checkouts`) and `lifecycle demo` (`run`)."""
