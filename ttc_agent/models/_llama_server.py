"""The embedded model's server: llama-cpp-python's, with lean logprobs (``lean_logprobs``).

Takes the arguments of ``python -m llama_cpp.server`` and runs that server, its models built
as ``LeanLogprobsLlama`` in this process only. Each model checks itself once loaded
(``verify``); where the check fails, or this llama-cpp-python lacks what the patch uses, the
server runs unpatched and says so on stderr with a line holding ``UNPATCHED``, which
``EmbeddedServer`` turns into a warning.

    python -m ttc_agent.models._llama_server --model model.gguf --port 8080
"""

from __future__ import annotations

import sys
from typing import Any

from ttc_agent.models.embedded import UNPATCHED


def warn(reason: object) -> None:
    """Say on stderr that this server computes logprobs as llama-cpp-python does, and why."""
    print(f"ttc-agent: {UNPATCHED} (logprobs cost as much as upstream): {reason}", file=sys.stderr)
    sys.stderr.flush()


def patch() -> bool:
    """Build the server's models as ``LeanLogprobsLlama``, each verified once loaded; False
    (with a warning) where this llama-cpp-python lacks what the patch uses."""
    import llama_cpp

    from ttc_agent.models.lean_logprobs import (
        LeanLogprobsLlama,
        PatchUnsupported,
        check_internals,
        verify,
    )

    try:
        check_internals()
    except PatchUnsupported as exc:
        warn(exc)
        return False

    class VerifiedLlama(LeanLogprobsLlama):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if not self.lean:
                return
            try:
                verify(self)
            except Exception as exc:  # whatever breaks, the model still serves, unpatched
                self.lean = False
                warn(exc)

    llama_cpp.Llama = VerifiedLlama
    return True


def main() -> None:
    patch()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
