"""Locales: which language and conventions an email is written in, and the filters that format in them."""
