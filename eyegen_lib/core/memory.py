"""Peak memory of this process and its children (DataLoader workers), sampled in the background.

``ru_maxrss`` sees one process; a data pipeline is several. :class:`PeakMemory` samples the
proportional set size (PSS: each shared page counted once, split among its sharers) of this
process and all its descendants, so the sum is the memory the pipeline really holds, and keeps the
peak. Sampling misses spikes shorter than ``interval`` seconds.
"""
from __future__ import annotations

import ctypes
import threading

import psutil

__all__ = ["PeakMemory", "tree_pss_bytes", "release_free_memory", "reuse_freed_memory"]

_malloc_trim = None
_reusing = False

# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20


def reuse_freed_memory() -> None:
    """Let glibc reuse the memory freed inside a render instead of handing it back at every free
    (once per process; elsewhere than glibc nothing).

    A render allocates and frees the same megabyte-sized temporaries chunk after chunk. By default
    glibc serves each from fresh ``mmap`` pages or trims the heap top after it is freed, so every
    chunk faults its pages in again: a quarter of a 64 × 64 RGB batch's time went to the kernel
    zeroing pages (13,600 page faults a batch of 256). With the mmap threshold at its 32 MB maximum
    and the trim threshold above it, freed temporaries are reused; :func:`release_free_memory`
    (``malloc_trim``, which the data pipeline calls after each chunk of rows it renders) still
    hands free pages back, so a worker's peak memory is bounded as before. A process-wide setting:
    bigger tensors (above 32 MB) are still mapped and unmapped as before."""
    global _reusing
    if _reusing:
        return
    _reusing = True
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; elsewhere nothing).
    Rendering a batch at 400 × 640 allocates and frees hundreds of MB, which glibc would otherwise
    keep in every DataLoader worker, and converting it in the training process as much again."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


def tree_pss_bytes(process: psutil.Process | None = None) -> int:
    """PSS of ``process`` (default: this one) and all its descendants, in bytes."""
    process = process or psutil.Process()
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            info = p.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a worker that just exited
    return total


class PeakMemory:
    """``with PeakMemory() as peak: …`` then ``peak.gib``: the largest process-tree PSS seen."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_pss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.peak = tree_pss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_pss_bytes())

    @property
    def gib(self) -> float:
        return self.peak / 2**30
