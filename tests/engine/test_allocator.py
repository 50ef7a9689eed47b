"""keep_freed_memory: after it, glibc serves a large allocation from the heap, not a new mapping."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from engine.allocator import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Counts glibc's live mmapped chunks (mallinfo2().hblks) while a 64 MB numpy array is alive.
PROBE = """
import ctypes, sys
import numpy as np
NAMES = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in NAMES.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    from engine.allocator import keep_freed_memory
    assert keep_freed_memory()
before = libc.mallinfo2().hblks
buffer = np.ones(64 * 2**20, dtype=np.uint8)
print(libc.mallinfo2().hblks - before)
"""


def _new_mappings(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_large_buffers_come_from_the_heap_once_tuned() -> None:
    assert _new_mappings("default") == 1  # glibc's default: its own mapping, unmapped when freed
    assert _new_mappings("tuned") == 0


@pytest.mark.skipif(GLIBC, reason="elsewhere the allocator is left alone")
def test_is_a_no_op_off_glibc() -> None:
    assert keep_freed_memory() is False
