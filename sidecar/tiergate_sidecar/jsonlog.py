"""Structured logs: one JSON object per line on stderr, in pino's shape (numeric `level`, `time` in
ms, `msg`) so the gateway's supervisor can forward each line into its own pino logger unchanged."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60}


class JsonLogger:
    def __init__(self, level: str = "info", stream: TextIO = sys.stderr, **bindings: Any) -> None:
        self.threshold = LEVELS.get(level, 30)
        self.stream = stream
        self.bindings = bindings
        # Lines from concurrent request threads must not interleave.
        self._lock = threading.Lock()

    def child(self, **bindings: Any) -> "JsonLogger":
        c = JsonLogger.__new__(JsonLogger)
        c.threshold, c.stream, c._lock = self.threshold, self.stream, self._lock
        c.bindings = {**self.bindings, **bindings}
        return c

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, msg: str, **fields: Any) -> None:
        n = LEVELS[level]
        if n < self.threshold:
            return
        record = {"level": n, "time": int(time.time() * 1000), **self.bindings, **fields, "msg": msg}
        line = json.dumps(record, default=str, separators=(",", ":"))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def debug(self, msg: str, **fields: Any) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log("info", msg, **fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self.log("warn", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("error", msg, **fields)
