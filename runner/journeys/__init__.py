"""Journeys: campaigns of several emails in order, each its own occurrence, with waits and exits."""
