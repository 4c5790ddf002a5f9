"""Shared helpers: glibc malloc keeps memory freed by one training step for the next."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_FAULTS = """
import resource, sys, torch
from polyvlm.utils import reuse_freed_memory
if sys.argv[1] == "1":
    assert reuse_freed_memory()
def step():  # allocate a step's worth of activations, then free them all (as after the backward pass)
    xs = [torch.ones(2 << 20) for _ in range(20)]
    del xs
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(tuned: bool) -> int:
    out = subprocess.run([sys.executable, "-c", _FAULTS, "1" if tuned else "0"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc only")
def test_freed_memory_is_reused_without_page_faults():
    default = _page_faults(False)
    # the fewest faults of three runs: other processes on a shared machine (or the kernel reclaiming cold pages)
    # can only add faults, never remove them, so a setting that does not work still fails every run
    tuned = min(_page_faults(True) for _ in range(3))
    # by default the freed 160 MB goes back to the OS and every step faults it in again, zeroed
    assert tuned * 3 < default, (tuned, default)
