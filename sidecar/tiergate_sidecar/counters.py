"""The sidecar's live counters, reported by Info and in logs so that tests and operators can see
what happened inside the server (e.g. that a cancelled generation really stopped)."""

from __future__ import annotations

import threading
from typing import Dict

FIELDS = (
    "generate_started",
    "generate_finished",
    "generate_cancelled",
    "generate_deadline_exceeded",
    "generate_failed",
    "tokens_generated",
    "score_requests",
    "active_requests",
    "kept_sequences_opened",
    "kept_sequences_open",
    "kept_calls",
)


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, int] = {f: 0 for f in FIELDS}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._values)
