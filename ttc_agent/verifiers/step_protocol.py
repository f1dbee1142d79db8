"""The step-verifier contract, now in ``ttc_agent.protocols`` (this path re-exports it for one
release)."""

from ttc_agent.protocols import StepVerifier, preferred_aggregate

__all__ = ["StepVerifier", "preferred_aggregate"]
