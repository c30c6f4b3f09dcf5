"""Keep freed memory for reuse on glibc, so large CPU activations stop paying for fresh pages.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and returns it to the
kernel on free. A 1280x720 LightUNet activation is 177 MB, so every layer's output is new memory whose first touch
page-faults, 4 KiB at a time, several times slower than the same op writing into reused memory (measured in
docs/performance.md, "Where CPU inference time went"). Serving large blocks from the heap and not trimming it
lets the next layer reuse the last one's pages. The price: the process keeps its peak memory until it exits, which
is what a command-line tool does anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_MAX = -4
# Bytes free at the top of the heap before glibc gives them back; -1 never trims. Trimming undoes the setting: the
# heap shrinks between layers and grows again; bench/allocator.py measures each choice (docs/performance.md).
TRIM_THRESHOLDS = {"keep": -1, "trim-1GiB": 2**30}
DEFAULT_SETTING = "keep"

_tuned = False


def reuse_freed_memory(setting: str = DEFAULT_SETTING) -> bool:
    """Tell glibc's allocator to keep freed blocks (idempotent: the first call's setting stays). False where there
    is no glibc (macOS, Windows, musl), which then keeps its default behaviour."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # mallopt returns 1 on success; both must take, or large blocks would still be returned to the kernel.
    _tuned = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLDS[setting]) == 1
    return _tuned
