"""Result cache: the same photo sent twice is answered without decoding or inference.

Keyed by SHA-256 of the uploaded bytes + model + precision (+ weights hash), it stores the
logits (so any ``top_k`` can be answered) and the image size. A bounded LRU by entry count
and by bytes; thread-safe; counts hits and misses.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CachedResult:
    logits: np.ndarray  # (classes,) float32
    width: int
    height: int
    timing: Any = None  # the first answer's ``Timing``: repeated to clients unless hits are shown
    warnings: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        return int(self.logits.nbytes) + 64


def content_key(data: bytes, *parts: str) -> str:
    h = hashlib.sha256(data)
    for part in parts:
        h.update(b"\0" + part.encode())
    return h.hexdigest()


class ResultCache:
    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 << 20):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, CachedResult] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> CachedResult | None:
        if not self.enabled:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: str, value: CachedResult) -> None:
        if not self.enabled or value.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = value
            self._bytes += value.nbytes
            while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
