from __future__ import annotations

from collections.abc import Iterator

import pytest

from ttc_agent.testing import LoopbackServer


@pytest.fixture
def loopback() -> Iterator[type[LoopbackServer]]:
    """Start loopback servers inside a test; all are stopped at its end."""
    started: list[LoopbackServer] = []

    class Managed(LoopbackServer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.start()
            started.append(self)

    yield Managed
    for server in started:
        server.stop()
