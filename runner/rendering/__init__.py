"""Turning a campaign's message into an email: templates (Jinja, sandboxed), the text part, template
errors a marketer can read, and the MIME message."""
