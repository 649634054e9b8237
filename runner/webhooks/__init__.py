"""Hearing back from mail providers: their event webhooks, authenticated and stored once per event.

The web route calls `receive` with the raw request; one module per provider reads that
provider's format (`Webhook` in `base` is the extension point, registered as the
`lifecycle.webhooks` entry point group).
"""

from .base import (
    ProviderEvent,
    UnknownWebhookProvider,
    Webhook,
    WebhookError,
    WebhookMalformed,
    WebhookNotConfigured,
    WebhookTooLarge,
    WebhookUnauthorized,
)
from .receive import Receipt, receive, webhook_class

__all__ = [
    "ProviderEvent",
    "Receipt",
    "UnknownWebhookProvider",
    "Webhook",
    "WebhookError",
    "WebhookMalformed",
    "WebhookNotConfigured",
    "WebhookTooLarge",
    "WebhookUnauthorized",
    "receive",
    "webhook_class",
]
