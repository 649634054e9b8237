"""Customers' data rights: consent history, exporting what the store holds on a customer, erasing it."""

from .consent import record_consent_changes, withdraw_consent
from .export import export_customer
from .forget import Erasure, forget_customer
from .forgotten import forgotten_among

__all__ = [
    "Erasure",
    "export_customer",
    "forget_customer",
    "forgotten_among",
    "record_consent_changes",
    "withdraw_consent",
]
