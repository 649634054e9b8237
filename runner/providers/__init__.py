"""Mail providers: `Provider` subclasses registered in the `lifecycle.providers` entry-point group."""

from __future__ import annotations

from ..models import SuppressionReason
from ..plugins import PROVIDERS, load
from ..settings import PROVIDER, Settings
from .base import Outcome, OutgoingMessage, Provider, SendResult

__all__ = ["Outcome", "OutgoingMessage", "Provider", "SendResult", "SuppressionReason", "provider_from_settings"]


def provider_from_settings(settings: Settings) -> Provider:
    """The provider named by LIFECYCLE_PROVIDER, configured from the same settings."""
    cls: type[Provider] = load(PROVIDERS, settings[PROVIDER])
    return cls.from_settings(settings)
