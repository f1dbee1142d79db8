"""The loopback server in a process of its own, for the benchmarks: it does not share the
client's GIL, and ``time.process_time()`` in the client counts the client's CPU alone."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
from collections.abc import Iterator
from multiprocessing.connection import Connection

from ttc_agent.testing import Handler, LoopbackServer


class ServedLoopback:
    """A loopback server running in a child process: its URL, and how many requests it took."""

    def __init__(self, base_url: str, connection: Connection) -> None:
        self.base_url = base_url
        self._connection = connection

    def take_count(self) -> int:
        """The chat and completion requests answered since the last call (and forget them)."""
        self._connection.send("count")
        return int(self._connection.recv())


def _serve(connection: Connection, handler: Handler, honour_n: bool, latency: float) -> None:
    gc.freeze()  # the heap forked from the client (its imports) is not the server's to sweep
    server = LoopbackServer(handler, honour_n=honour_n, latency=latency)
    server.start()
    connection.send(server.base_url)
    while connection.recv() == "count":  # anything else: stop
        count = len(server.requests)
        server.reset()
        connection.send(count)
    server.stop()


@contextlib.contextmanager
def loopback_process(handler: Handler, honour_n: bool, latency: float) -> Iterator[ServedLoopback]:
    """Serve ``handler`` from a forked process for the length of the block."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(child, handler, honour_n, latency), daemon=True
    )
    process.start()
    try:
        yield ServedLoopback(parent.recv(), parent)
    finally:
        parent.send("stop")
        process.join(5)
