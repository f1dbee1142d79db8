"""``ttc run``: answer one prompt with any registered strategy, from the command line.

The strategy comes from the registry (``--strategy NAME``, or ``--effort`` for think_harder), its
parts from the arguments (``--judge`` names the card of the verifier it needs, ``--answer`` how
answers compare) and its settings from the options it has (``-n``, ``--keep``, ``--rounds``...):
an option a strategy does not have is left out, and one not given keeps the strategy's default.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from rich.console import Console

from ttc_agent.answers import boxed_answer, equivalence, last_number, normalize
from ttc_agent.display import ProgressBars
from ttc_agent.errors import ConfigurationError, SearchError, TTCError
from ttc_agent.models import OpenAIChat, RetryPolicy
from ttc_agent.models.continuation import CONTINUATIONS
from ttc_agent.protocols import Parts
from ttc_agent.strategies import Policy, StrategyNode, registry, search_result
from ttc_agent.strategies.think_harder import EFFORTS
from ttc_agent.types import SearchResult
from ttc_agent.verifiers import LLMStepJudge, PairwiseJudge, RubricJudge, available_cards
from ttc_agent.verifiers.from_card import step_verifier_for

ANSWER_KEYS = {"math": boxed_answer, "exact": normalize, "number": last_number}
SETTINGS = (
    *("n", "temperature", "max_tokens", "keep", "subtrees", "max_steps", "rounds", "effort"),
    *("selection", "finalists", "mode", "keep_share", "stopping"),
)
"""The options that set a strategy's settings of the same name, where it has them."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc run`` arguments."""
    parser.add_argument("prompt", help="the user prompt")
    names = ", ".join(row.name for row in registry.strategies())
    parser.add_argument("--strategy", help=f"one of: {names} (default best_of_n)")
    parser.add_argument(
        "--effort",
        choices=EFFORTS,
        help="think harder at this level instead of naming a strategy: none (one call), low, "
        "medium, high",
    )
    parser.add_argument("-n", type=int, default=8, help="candidates to sample (default 8)")
    parser.add_argument("--budget-calls", type=int, help="the most model calls (retries count)")
    parser.add_argument("--budget-tokens", type=int, help="the most tokens, prompts included")
    cards = ", ".join(available_cards())
    steps = ", ".join(_step_searches())
    parser.add_argument(
        "--judge",
        help=f"judge card: a path or one of {cards} (default: helpfulness; math_step for "
        f"{steps}, whose judge scores steps)",
    )
    parser.add_argument(
        "--answer",
        choices=sorted(ANSWER_KEYS),
        help="how answers are compared: majority_vote groups by it (default math); best_of_n, "
        "beam_search and dvts become weighted by answer",
    )
    parser.add_argument(
        "--keep",
        type=int,
        help="beam_search: survivors per step (default 4); refine: drafts kept each round (1)",
    )
    parser.add_argument("--subtrees", type=int, help="dvts: independent subtrees (default 4)")
    parser.add_argument("--max-steps", type=int, help=f"{steps}: most steps (default 40)")
    parser.add_argument("--rounds", type=int, help="refine: revision rounds (default 3)")
    parser.add_argument(
        "--selection",
        choices=["best", "tournament", "hybrid"],
        help="best_of_n: by score (default), a knockout tournament under the --judge card's "
        "pairwise judge, or the tournament among the --finalists best-scored",
    )
    parser.add_argument("--finalists", type=int, help="--selection hybrid: entrants (default 4)")
    parser.add_argument(
        "--policy",
        help="a policy.json from ttc eval --fit-policy: adaptive decides by it; it tells "
        "adaptive and --effort when their judge is no better than chance",
    )
    parser.add_argument(
        "--mode",
        choices=["offline", "online"],
        help="deepconf: sample all, then vote (offline, the default), or stream and cancel "
        "the traces whose confidence drops (online)",
    )
    parser.add_argument(
        "--keep-share",
        type=float,
        help="deepconf: the share of the most confident traces that vote (default 0.9)",
    )
    parser.add_argument(
        "--stopping",
        choices=["adaptive", "supermajority"],
        help="majority_vote: stop sampling once the vote is settled (default: all n)",
    )
    parser.add_argument("--model", help="model name (default: $TTC_MODEL, or the server's only)")
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the embedded model)",
    )
    parser.add_argument("--continuation", choices=CONTINUATIONS, help="how steps continue (auto)")
    parser.add_argument("--judge-model", help="a different model for the judge (same endpoint)")
    parser.add_argument("--system", help="a system message to put before the prompt")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, default=None, help="longest candidate")
    parser.add_argument("--retries", type=int, default=6, help="tries per call (default 6)")
    parser.add_argument("--json", action="store_true", help="print the search record as JSON")
    parser.add_argument(
        "--out",
        help="also save the search record as JSON to this file (written whole when the run "
        "ends; nothing is written when it fails)",
    )


async def run_prompt(args: argparse.Namespace, err: Console) -> SearchResult:
    """Answer ``args.prompt`` with the strategy the arguments name, progress on ``err``."""
    if args.effort and args.strategy:
        raise ConfigurationError("give --strategy or --effort, not both")
    row = registry.strategy(args.strategy or ("think_harder" if args.effort else "best_of_n"))
    if args.retries < 1:
        raise ConfigurationError(f"--retries must be at least 1, got {args.retries}")
    retry = RetryPolicy(attempts=args.retries, on_retry=_retry_notice(err))
    model = OpenAIChat(
        args.model, base_url=args.base_url, retry=retry, continuation=args.continuation
    )
    judge_model = model
    if args.judge_model or "step_verifier" in row.needs | row.takes:  # step judges: logprobs
        judge_model = OpenAIChat(
            args.judge_model or args.model, base_url=args.base_url, retry=retry, logprobs=True
        )
    try:
        node = _node(args, row, model, judge_model)
        messages: list[BaseMessage] = [SystemMessage(args.system)] if args.system else []
        messages.append(HumanMessage(args.prompt))
        limits = {"calls": args.budget_calls, "total_tokens": args.budget_tokens}
        budget = {key: value for key, value in limits.items() if value is not None}
        config = {"configurable": {"ttc": {"budget": budget}}} if budget else {}
        final = None
        with ProgressBars(err) as bars:
            async for mode, chunk in node.graph.astream(
                {"messages": messages}, config, stream_mode=["custom", "values"]
            ):
                if mode == "values":
                    final = chunk
                elif isinstance(chunk, dict):
                    bars.update(chunk)
        return search_result(final)
    except SearchError as exc:
        raise exc.__cause__ if isinstance(exc.__cause__, TTCError) else exc from None
    finally:
        await model.aclose()
        if judge_model is not model:
            await judge_model.aclose()


def _step_searches() -> list[str]:
    """The strategies whose verifier is a step verifier (``Strategy.grows_steps``)."""
    return [row.name for row in registry.strategies() if row.grows_steps]


def _retry_notice(err: Console) -> Callable[[int, int, str], None]:
    """Print each retry on stderr as it happens: ``retrying 2/6: answered 503``."""

    def notice(attempt: int, attempts: int, why: str) -> None:
        err.print(f"retrying {attempt}/{attempts}: {why}", highlight=False)

    return notice


def _node(
    args: argparse.Namespace, row: registry.Strategy[Any], model: OpenAIChat, judge: OpenAIChat
) -> StrategyNode[Any]:
    """The registered strategy's node, with the parts it needs and the settings given."""
    given = {name: getattr(args, name) for name in SETTINGS}
    values = {name: value for name, value in given.items() if value is not None}
    if args.policy:  # adaptive's policy; think_harder reads its verifier record
        policy = Policy.load(args.policy)
        values |= {"policy": policy, "judge_record": policy.verifier}
    return row.node(_parts(args, row, model, judge), values)


def _parts(
    args: argparse.Namespace, row: registry.Strategy[Any], model: OpenAIChat, judge: OpenAIChat
) -> Parts:
    """What the strategy uses, from the arguments: ``--judge`` names the card of the verifier
    it needs (a step verifier's, for a step search), ``--answer`` how answers compare."""
    uses, given = row.needs | row.takes, dict[str, Any]()
    if row.name in _step_searches():
        given["step_verifier"] = step_verifier_for(args.judge or "math_step", judge)
    elif "step_verifier" in uses:  # adaptive: lets its policy choose beam search
        given["step_verifier"] = LLMStepJudge(judge)
    if "verifier" in row.needs:  # without logprobs unless a judge model is named: faster
        given["verifier"] = RubricJudge(
            args.judge or "helpfulness", judge if args.judge_model else model
        )
    if "pairwise" in uses and args.selection in ("tournament", "hybrid"):
        given["pairwise"] = PairwiseJudge(args.judge or "helpfulness", judge)
    if "answer_key" in row.needs or ("answer_key" in uses and args.answer):
        given["answer_key"] = ANSWER_KEYS[args.answer or "number"]
    if "equivalence" in uses:
        groups: dict[str, str | Callable[[str], str | None]] = {"number": last_number}
        given["equivalence"] = equivalence(groups.get(args.answer, args.answer or "math"))
    return Parts(model, **given)
