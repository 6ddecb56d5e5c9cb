"""``server.gctune``: the long-running processes freeze their start-up objects and collect
the young generation less often (in a process of its own: the test process keeps its
collector as it is)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc, weakref
from server.gctune import YOUNG_THRESHOLD, tune_gc
import server.processing.batch  # a start-up's worth of objects
before = gc.get_freeze_count()
tune_gc()
assert before == 0 and gc.get_freeze_count() > 10_000, (before, gc.get_freeze_count())
assert gc.get_threshold()[0] == YOUNG_THRESHOLD, gc.get_threshold()
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after the freeze is still collected
gone = weakref.ref(a)
del a, b
gc.collect()
assert gone() is None
print("ok")
"""


def test_tune_gc_freezes_start_up_and_still_collects_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

