"""Lifecycle email campaigns for online shops."""

__version__ = "0.1.0"
