"""One request at a time across servers that share this machine's CPU cores.

Each embedded llama.cpp server computes with every core. Two of them computing at once (a 0.5B
generator and a 1.5B judge, say) fight over the cores, and llama.cpp's spinning worker threads
make that fight ruinous: on two cores, one request to each took 10 times longer at once than one
after the other (``benchmarks/embedded_turns.py``). Every server already answers one request
at a time, so taking turns across servers costs nothing and keeps each request at full speed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the turn holds within this process only
    fcntl = None  # type: ignore[assignment]

POLL = 0.005  # seconds between tries at a turn held by another thread or process


class SharedTurn:
    """A turn shared by several endpoints: first come, first served within an event loop, and
    exclusive across event loops, threads and, with ``lock_file``, processes.

    Example:
        >>> turn = SharedTurn()
        >>> async def call():
        ...     async with turn.taken():
        ...         return "only this request computes now"
        >>> asyncio.run(call())
        'only this request computes now'
    """

    def __init__(self, lock_file: Path | None = None) -> None:
        self.lock_file = lock_file
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._locks = weakref.WeakKeyDictionary()
        self._thread_lock = threading.Lock()

    @asynccontextmanager
    async def taken(self) -> AsyncIterator[None]:
        """Wait for the turn, hold it for the block (waits poll, so cancelling one is safe)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            while not self._thread_lock.acquire(blocking=False):
                await asyncio.sleep(POLL)
            try:
                descriptor = self._open()
                try:
                    while descriptor is not None and not _flocked(descriptor):
                        await asyncio.sleep(POLL)
                    yield
                finally:
                    if descriptor is not None:
                        os.close(descriptor)  # releases the file lock
            finally:
                self._thread_lock.release()

    def _open(self) -> int | None:
        if self.lock_file is None or fcntl is None:
            return None
        try:
            return os.open(self.lock_file, os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:  # unwritable temp folder: the turn holds within this process only
            return None


def _flocked(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


LOCAL_CPU = SharedTurn(Path(tempfile.gettempdir()) / "ttc-agent-cpu.lock")
"""The turn every embedded server on this machine shares, across processes too."""
