"""One request at a time across servers that share this machine's CPU cores.

Each embedded llama.cpp server computes with every core. Two of them computing at once (a 0.5B
generator and a 1.5B judge, say) fight over the cores, and llama.cpp's spinning worker threads
make that fight ruinous: on two cores, one request to each took 10 times longer at once than one
after the other (``benchmarks/embedded_turns.py``). Every server already answers one request
at a time, so taking turns across servers costs nothing and keeps each request at full speed.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class SharedTurn:
    """A turn shared by several endpoints: first come, first served within an event loop, and
    exclusive across event loops and threads too.

    Example:
        >>> turn = SharedTurn()
        >>> async def call():
        ...     async with turn.taken():
        ...         return "only this request computes now"
        >>> asyncio.run(call())
        'only this request computes now'
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._locks = weakref.WeakKeyDictionary()
        self._machine = threading.Lock()  # across loops; polled, so a cancelled wait holds nothing

    @asynccontextmanager
    async def taken(self) -> AsyncIterator[None]:
        """Wait for the turn, hold it for the block."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            while not self._machine.acquire(blocking=False):
                await asyncio.sleep(0.005)
            try:
                yield
            finally:
                self._machine.release()


LOCAL_CPU = SharedTurn()
"""The turn every embedded server of this process shares."""
