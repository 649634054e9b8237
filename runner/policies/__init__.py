"""Sending policies: shop-wide rules from `campaigns/_policy.yaml`, overridable per campaign, that the
engine applies to marketing mail (frequency cap, smart sending, priority, send window, sunset).

`spec` is the YAML schema and the resolved `Policy`; `loader` reads the policy file and gives
each campaign its effective policy; `window` is send-window arithmetic in a customer's zone;
`decide` is the pure rule for one occurrence; `evaluation` loads the facts for a chunk of
occurrences in a few set-based queries and applies the rules across one evaluation; `retries` holds a
dispatcher's retry to the send window.
"""
