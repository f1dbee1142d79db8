"""The verifier contract, now in ``ttc_agent.protocols`` (this path re-exports it for one
release)."""

from ttc_agent.protocols import OnScore, Verifier

__all__ = ["OnScore", "Verifier"]
