"""Unique coupon codes per send: from a pool the shop imports, or generated from a secret (docs/coupons.md)."""
