"""The demo shop: synthetic data (`shop`), abandoned checkouts (`checkouts`) and `lifecycle demo` (`run`)."""
