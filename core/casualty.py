"""What a raw reader reports when data cannot become a PatchPair: named, with a reason, never lost.

A reader either raises ``ReadError`` (the whole file is unusable; ``reason`` says why) or, for
formats that hold many pairs per file, yields a ``Casualty`` for one bad pair and carries on with
the next. Reason codes are those of the preprocessing filters (``unreadable``, ``bad_shape``,
``missing_bands``, ...), so every loss is counted under one vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Casualty:
    """One pair that could not be read. ``pair_id`` is "" when the file did not say which pair."""

    pair_id: str
    reason: str
    detail: str
    source: str  # the file (and record or pixel offset) it came from

    def to_json(self) -> dict:
        return asdict(self)


class ReadError(ValueError):
    """A file that cannot be read as pairs at all; ``reason`` is the rejection code to count it under."""

    def __init__(self, message: str, reason: str = "unreadable"):
        super().__init__(message)
        self.reason = reason
