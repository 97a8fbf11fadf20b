"""Values derived from files, reused until one of those files changes.

A cache hit must not re-read the policy file or list a table's log on every request,
yet an edit made by any process must be seen by the next request. A file's stat
signature (inode, size, mtime and ctime in ns) changes on every write, atomic replace,
or entry added to a directory, with one gap: two changes within one tick of the
file-system clock can leave the times equal. As git does for its index ("racy git"),
a signature taken less than :data:`RACY_S` after the newest of its times is not
trusted: the value is computed afresh on every call until the files are older than
that, after which any later change moves a time forward and is seen.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

RACY_S = 2.0
"""A signature is trusted once its files are this much older than the moment it is
taken: well above any file-system timestamp granularity (a jiffy on Linux, 2 s on FAT)."""

Stamp = tuple[int, int, int, int] | None
Signature = tuple[Stamp, ...]


def now() -> float:
    """The wall clock the racy window is measured on (file times are wall-clock)."""
    return time.time()


def signature(paths: Sequence[Path | str]) -> Signature:
    """The stat of each path (``None`` for a missing one): equal signatures, same files."""
    stamps: list[Stamp] = []
    for path in paths:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            stamps.append(None)
            continue
        stamps.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(stamps)


def settled(sig: Signature, now_s: float | None = None) -> bool:
    """Whether every time in ``sig`` is older than :data:`RACY_S`."""
    newest = max((max(s[2], s[3]) for s in sig if s is not None), default=0)
    return newest / 1e9 < (now() if now_s is None else now_s) - RACY_S


class FileMemo(Generic[K, V]):
    """A bounded map ``key -> value`` whose entries hold while their files are unchanged.

    The signature is taken *before* the value is computed, so a change racing the
    computation leaves an entry that no longer matches: it is recomputed, never served
    stale. Thread-safe; the computation runs outside the lock.
    """

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[K, tuple[Signature, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, paths: Sequence[Path | str], compute: Callable[[], V]) -> V:
        sig = signature(paths)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] == sig:
            return entry[1]
        value = compute()
        if settled(sig):
            with self._lock:
                self._entries[key] = (sig, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
