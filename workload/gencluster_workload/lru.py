"""L1 cache: an in-process LRU of byte strings, bounded by total bytes, with a TTL.

Why bytes, not entries: a mesh at resolution 128 is a hundred times one at 16; an entry count
would either waste memory or evict too soon. Used from the event loop only (no locking).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class ByteLRU:
    def __init__(
        self, max_bytes: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl_seconds
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, value = entry
        if self.ttl and self._clock() >= expires:
            self._drop(key)
            self.expirations += 1
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: bytes) -> bool:
        """Store; False when the value alone is larger than the whole cache."""
        if len(value) > self.max_bytes:
            return False
        if key in self._data:
            self._drop(key)
        self._data[key] = (self._clock() + self.ttl if self.ttl else float("inf"), value)
        self.bytes += len(value)
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._drop(oldest)
            self.evictions += 1
        return True

    def _drop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self.bytes -= len(value)

    def stats(self) -> dict[str, float | int]:
        lookups = self.hits + self.misses
        return {
            "entries": len(self._data),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "ttl_seconds": self.ttl,
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hits / lookups, 4) if lookups else 0.0,
            "evictions": self.evictions,
            "expirations": self.expirations,
        }
