"""A provider that prints each message to standard output, for trying campaigns out."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from .base import OutgoingMessage, Provider, SendResult


class ConsoleProvider(Provider):
    name = "console"
    max_batch_size = 1000

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        out = self.stream or sys.stdout
        for message in messages:
            out.write(message.mime.as_string())
            out.write("\n" + "=" * 72 + "\n")
        out.flush()
        return [SendResult.accepted(f"console-{m.idempotency_key}") for m in messages]
