"""Trigger types: each finds a campaign's occurrences with one SQL query over the store."""
