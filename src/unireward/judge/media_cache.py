"""Content keys for decoded media and a bounded LRU of what was computed from them.

A key is a hash of the pixels themselves (size, mode and every byte), so two images share a key
only when they are the same picture; two different images of the same size never do. The LRU
holds decoded images and vision features for the server, bounded by bytes, and counts its hits.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PIL import Image


def content_key(item: Any) -> str:
    """A hash of an image's pixels, or of every frame of a video (a list of PIL frames).

    >>> a, b = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    >>> content_key(a) == content_key(a.copy()), content_key(a) == content_key(b)
    (True, False)
    >>> content_key([a, b]) == content_key([a, b]), content_key([a, b]) == content_key([b, a])
    (True, False)
    """
    h = hashlib.blake2b(digest_size=20)
    frames = [item] if isinstance(item, Image.Image) else list(item)
    h.update(b"video" if not isinstance(item, Image.Image) else b"image")
    for f in frames:
        h.update(f"{f.mode}:{f.width}x{f.height};".encode())
        h.update(f.tobytes())
    return h.hexdigest()


def bytes_key(raw: bytes, *context: Any) -> str:
    """A hash of raw bytes plus what else the result depends on (a decode target size).

    >>> bytes_key(b"abc", 448) == bytes_key(b"abc", 448), bytes_key(b"abc", 448) == bytes_key(b"abc", 224)
    (True, False)
    """
    h = hashlib.blake2b(raw, digest_size=20)
    h.update(repr(context).encode())
    return h.hexdigest()


def nbytes(value: Any) -> int:
    """Approximate bytes held by ``value`` (tensors, PIL images, and containers of them).

    >>> nbytes(Image.new("RGB", (10, 10))), nbytes([Image.new("L", (4, 4))] * 2)
    (300, 32)
    """
    if isinstance(value, Image.Image):
        return value.width * value.height * len(value.getbands())
    if hasattr(value, "element_size") and hasattr(value, "nelement"):
        return int(value.element_size() * value.nelement())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    return 0


class MediaCache:
    """A thread-safe LRU bounded by ``max_bytes`` (0 disables it: nothing is kept).

    >>> c = MediaCache(max_bytes=600)
    >>> c.put("a", Image.new("RGB", (10, 10))); c.put("b", Image.new("RGB", (10, 10)))
    >>> c.get("a") is not None, c.bytes
    (True, 600)
    >>> c.put("c", Image.new("RGB", (10, 10)))  # evicts the least recently used: "b"
    >>> c.get("b") is None, c.get("a") is not None, c.bytes <= 600, c.hits
    (True, True, True, 2)
    """

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"media cache size must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: str, value: Any, size: int | None = None) -> None:
        size = nbytes(value) if size is None else size
        if size > self.max_bytes:
            return  # larger than the whole cache (or the cache is off): not kept
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, s) = self._items.popitem(last=False)
                self.bytes -= s

    def get_or_make(self, key: str, make: Callable[[], Any]) -> Any:
        """The cached value, or ``make()`` stored under ``key`` (two threads may both make it)."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value
