"""Run pyHanko's coroutines from synchronous code on one event loop per thread and process.

``asyncio.run`` creates a loop per call and, in the main thread, swaps the SIGINT handler;
on Python 3.11 restoring it builds the repr of the finished task, result included, which
costs hundreds of milliseconds when the result holds a large PDF.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on this thread's (and this process's) loop."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed() or getattr(_local, "pid", None) != os.getpid():
        # a loop inherited through fork (RQ work horses) shares the parent's selector
        loop = asyncio.new_event_loop()
        _local.loop, _local.pid = loop, os.getpid()
    return loop.run_until_complete(coro)
