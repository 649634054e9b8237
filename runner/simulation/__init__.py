"""Simulating a past period: what ticks at every instant of a grid would have sent, without sending.

`replay.simulate_campaign` evaluates each campaign once over the whole period against the store as it
was at each tick (runner/asof.py); `summary` counts the outcome per campaign and day; `chart` writes
the CSV, an SVG chart and a self-contained HTML page. `App.simulate` is the entry point.
"""
