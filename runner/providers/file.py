"""The default provider: writes each message as an `.eml` file, named by its idempotency key."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from ..settings import OUTBOX_DIR, Settings
from .base import OutgoingMessage, Provider, SendResult


class FileProvider(Provider):
    """Idempotent like a real API: a message whose file exists already is not written again."""

    name = "file"
    max_batch_size = 1000

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings[OUTBOX_DIR])

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results = []
        made: set[Path] = set()  # folders made (or found) in this batch: one mkdir per campaign, not per email
        for message in messages:
            folder = self.outbox / ("test" if message.is_test else message.campaign_id)
            path = folder / f"{message.idempotency_key}.eml"
            try:
                if not path.exists():
                    if folder not in made:
                        folder.mkdir(parents=True, exist_ok=True)
                        made.add(folder)
                    partial = path.with_suffix(".eml.part")
                    partial.write_bytes(message.mime_bytes)
                    os.replace(partial, path)  # a crash never leaves a half-written .eml
            except OSError as exc:
                results.append(SendResult.retryable(f"cannot write {path}: {exc.strerror}"))
                continue
            results.append(SendResult.accepted(str(path)))
        return results
