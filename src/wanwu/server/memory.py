"""The server's dealings with glibc's allocator: thresholds pinned at start, freed pages handed
back after a model is loaded or unloaded. Nothing happens where the C library is not glibc."""

from __future__ import annotations

import ctypes
import gc
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def tune_malloc(mmap_threshold: int = 1 << 20, trim_threshold: int = 16 << 20) -> None:
    """Pin glibc's thresholds. By default glibc raises the mmap threshold after large blocks are
    freed, so a batch's activation buffers then come from the heap, which rarely shrinks: the
    server's RSS kept the peak of every burst; pinned at 1 MB they are mapped and unmapped.
    Pinning it also pins the trim threshold, at 128 KB unless set: every request's freed
    decode buffers were then handed back to the kernel and faulted in again by the next one
    (~800 page faults a request); 16 MB of free heap is kept instead. Skipped when the user set
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_."""
    libc = _glibc()
    if libc is None:
        return
    try:
        if not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
            libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
        if not os.environ.get("MALLOC_TRIM_THRESHOLD_"):
            libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
    except AttributeError:  # a libc.so.6 without mallopt: not glibc
        pass


def release_freed_memory() -> None:
    """After a model is loaded or unloaded: collect what it left, and ask glibc to give the freed
    pages back (loading leaves graph bytes and build temporaries in heaps that do not shrink
    by themselves, 5-19 MB measured; an unloaded session's memory stayed in the RSS without this)."""
    gc.collect()
    libc = _glibc()
    if libc is None:
        return
    try:
        libc.malloc_trim(0)
    except AttributeError:  # not glibc
        pass
