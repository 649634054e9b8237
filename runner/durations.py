"""Durations as campaign files write them: 30d, 12h, 90m, 2w, 1d12h."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_PART = re.compile(r"(\d+)\s*([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
HINT = "write durations as a number and a unit: 30d, 12h, 90m, 2w or 1d12h"


def parse_duration(value: Any) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration")
    text = value.strip().lower().replace(" ", "")
    if not text or _PART.sub("", text):
        raise ValueError(f"{value!r} is not a duration")
    return dt.timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _PART.findall(text)))


def format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in _UNITS.items():
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return "0s"


PATTERN = r"^\s*(\d+\s*[wdhmsWDHMS]\s*)+$"

Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration),
                     WithJsonSchema({"type": "string", "pattern": PATTERN, "description": HINT,
                                     "examples": ["30d", "12h", "1d12h"]})]
