"""Run pyHanko's coroutines from synchronous code (jobs, views, the CLI).

Not ``asyncio.run``: in the main thread it swaps the SIGINT handler, and on Python 3.11
restoring it builds the repr of the finished task, result included, which cost ~270 ms
per signature when the result held a 5 MB PDF. A private loop per call is cheap, leaves
nothing behind in threads or forked RQ work horses, and closes its executor threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
