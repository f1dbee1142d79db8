"""``ttc eval``: an accuracy-against-budget sweep from the command line.

ttc eval data/gsm8k_test.jsonl --limit 50 -n 16 --judge math_step --out runs/gsm8k
ttc eval mine.jsonl --question-field q --answer-field a -n 8 --no-judge --out runs/mine
ttc eval data/math500.jsonl -n 8 --judge-embedded 1.5b --out runs/math
ttc eval data/gsm8k_test.jsonl --limit 100 -n 16 --fit-policy --out runs/fit   # policy.json
ttc eval data/gsm8k_test.jsonl --limit 50 --rescore runs/gsm8k --judge math_resolve --out runs/r
ttc eval data/gsm8k_test.jsonl -n 8 --no-judge --search deepconf --search deepconf_online --out r

The models and progress bars here serve ``ttc writing`` and ``ttc agreement`` too
(``judging_commands``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ttc_agent.answers import equivalence, last_number, require_math_verify
from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.datasets import MATH_INSTRUCTION, load_problems
from ttc_agent.evaluation.plots import require_matplotlib
from ttc_agent.evaluation.policy_fit import describe, fit_policy
from ttc_agent.evaluation.rescore import rescore
from ttc_agent.evaluation.rows import SAMPLES, read_rows, samples_in
from ttc_agent.evaluation.run import SearchFactory, evaluate
from ttc_agent.evaluation.summary import Summary
from ttc_agent.models import OpenAIChat, RetryPolicy
from ttc_agent.models.continuation import CONTINUATIONS, Continuation
from ttc_agent.protocols import Parts
from ttc_agent.strategies import Policy, StrategyNode, registry
from ttc_agent.verifiers.from_card import reasons_first, step_verifier_for, verifier_for


def step_searches() -> list[str]:
    """The registered strategies that search step by step: they have no prefixes to read off
    one run, so ``--search`` runs them once per budget.

    Example:
        >>> step_searches()
        ['beam_search', 'dvts', 'particle_filter']
    """
    return [row.name for row in registry.strategies() if row.grows_steps]


CONFIDENCE_SEARCHES = ("deepconf", "deepconf_online")
"""What ``--search`` also runs at every budget: deepconf offline and online (no judge)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc eval`` arguments."""
    parser.add_argument("data", help="a JSONL file: GSM8K, MATH-500 or your own")
    parser.add_argument(
        "--format", default="auto", help="gsm8k, math500 or jsonl (default: from the file name)"
    )
    parser.add_argument("--question-field", help="the question's field in your JSONL")
    parser.add_argument("--answer-field", help="the gold answer's field in your JSONL")
    parser.add_argument("--id-field", help="an id field (default: the line number)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT problems")
    parser.add_argument(
        "-n",
        type=int,
        default=16,
        help="the largest n (default 16); every smaller power of two is measured from prefixes",
    )
    parser.add_argument("--out", required=True, help="the run's folder; rerun to resume")
    parser.add_argument(
        "--judge",
        help="judge card of the verifier (default: math_solution on whole solutions, math_step "
        "on --search steps)",
    )
    parser.add_argument("--no-judge", action="store_true", help="no verifier: majority, pass@n")
    parser.add_argument(
        "--search",
        action="append",
        choices=[*step_searches(), *CONFIDENCE_SEARCHES],
        help="also run this search at every budget: a step search guided by the judge as a "
        "step verifier, or deepconf (offline) or deepconf_online (a warm-up of min(4, n - 1) "
        "traces, then streamed ones; offline at n = 1), which need no judge but the model's "
        "logprobs; repeat for several",
    )
    parser.add_argument(
        "--keep-share",
        type=float,
        default=0.9,
        help="deepconf: the share of the most confident traces that vote (default 0.9)",
    )
    parser.add_argument("--keep", type=int, default=4, help="beam_search: survivors per step")
    parser.add_argument("--subtrees", type=int, default=4, help="dvts: independent subtrees")
    parser.add_argument(
        "--answer",
        choices=["math", "number"],
        default="math",
        help="how answers are grouped (default: math-verify)",
    )
    add_model_arguments(parser)
    parser.add_argument("--continuation", choices=CONTINUATIONS, help="how steps continue")
    parser.add_argument("--concurrency", type=int, default=4, help="problems in flight")
    parser.add_argument("--instruction", default=MATH_INSTRUCTION, help="appended to questions")
    parser.add_argument(
        "--fit-policy",
        action="store_true",
        help="fit adaptive's policy to the run: OUT/policy.json (load with Policy.load)",
    )
    parser.add_argument(
        "--probe", type=int, default=4, help="--fit-policy: the probe's size (adaptive's, 4)"
    )
    parser.add_argument(
        "--rescore",
        metavar="RUN",
        help="score the candidates an earlier run (its folder) sampled with --judge instead of "
        "sampling again: verifiers compared on the same candidates",
    )


async def run(args: argparse.Namespace, err: Console) -> tuple[Summary, Policy | None]:
    """Run the sweep the arguments describe (or, with ``--rescore``, score an earlier run's
    candidates again), with a progress bar on ``err``; with ``--fit-policy``, also fit
    adaptive's policy to it and write ``OUT/policy.json``."""
    require_matplotlib()  # the optional packages the run ends with, checked before it starts
    for option in ("fit_policy", "rescore"):
        if getattr(args, option) and args.no_judge:
            flag = "--" + option.replace("_", "-")
            raise ConfigurationError(f"{flag} needs a verifier (its scores): drop --no-judge")
    if args.fit_policy and not args.rescore and not 1 <= args.probe <= args.n:
        raise ConfigurationError(f"--probe must be from 1 to -n ({args.n}), got {args.probe}")
    if args.answer == "math":
        require_math_verify()
    problems = load_problems(
        args.data,
        args.format,
        question=args.question_field,
        answer=args.answer_field,
        id=args.id_field,
        limit=args.limit,
    )
    if not problems:
        raise ConfigurationError(f"{args.data} holds no problems")
    retry = RetryPolicy(attempts=max(1, args.retries))
    steps = [name for name in args.search or [] if name not in CONFIDENCE_SEARCHES]
    model = model_from(
        args.model, args.base_url, args.embedded, retry, continuation=args.continuation
    )
    judge_model = None
    if not args.no_judge:
        judge_model = model_from(
            args.judge_model or args.model, args.base_url, args.judge_embedded, retry
        )
    if steps and judge_model is None:
        raise ConfigurationError("--search needs a judge to guide the steps; drop --no-judge")
    try:
        verifier = verifier_for(args.judge or "math_solution", judge_model) if judge_model else None
        searches = _searches(args, model, judge_model) if args.search else None
        if steps:  # a server that cannot continue steps: one error now, not one per problem
            await model.check_continuation()
        if judge_model is not None and reasons_first(args.judge or "math_solution"):
            await judge_model.check_continuation()  # the verdict continues the reasoning
        with ProgressBar(err, "problems", len(problems)) as update:
            progress = {"concurrency": args.concurrency, "on_problem": lambda _, d, t: update(d, t)}
            if args.rescore and verifier is not None:
                summary = await rescore(problems, args.rescore, verifier, out=args.out, **progress)
            else:
                summary = await evaluate(
                    problems,
                    model,
                    n=args.n,
                    out=Path(args.out),
                    verifier=verifier,
                    answer="math" if args.answer == "math" else last_number,
                    instruction=args.instruction,
                    temperature=args.temperature,
                    max_tokens=args.max_tokens,
                    searches=searches,
                    **progress,
                )
        policy = _fit(args, {p.id for p in problems}, summary) if args.fit_policy else None
        return summary, policy
    finally:
        await model.aclose()
        if judge_model is not None:
            await judge_model.aclose()


def _fit(args: argparse.Namespace, wanted: set[str], summary: Summary) -> Policy:
    """Fit the policy to the run's rows and write it to ``OUT/policy.json``."""
    rows_path = Path(args.out) / "candidates.jsonl"
    samples = {pid: s for pid, s in samples_in(rows_path).items() if pid in wanted}
    searches = [r for r in read_rows(rows_path) if r.get("strategy", SAMPLES) != SAMPLES]
    policy = fit_policy(
        samples, probe=args.probe, search_rows=searches, verifier=summary.verifier, keep=args.keep
    )
    policy.save(Path(args.out) / "policy.json")
    return policy


def report(summary: Summary, out: str, policy: Policy | None = None) -> str:
    """What ``ttc eval`` prints when done."""
    failed = ""
    if summary.failed:
        failed = f"\n{len(summary.failed)} problems failed (rerun to retry): " + ", ".join(
            sorted(summary.failed)[:10]
        )
    verifier = f"\n{summary.verifier.line()}" if summary.verifier is not None else ""
    scores = f"  scores: {out}/scores.png" if summary.verifier is not None else ""
    fitted = f"\n{describe(policy)}\npolicy: {out}/policy.json" if policy is not None else ""
    return (
        f"{summary.problems} problems, model {summary.settings['model']}, verifier "
        f"{summary.settings['verifier'] or 'none'}\n{summary.table()}{verifier}{failed}\n"
        f"rows: {out}/candidates.jsonl  summary: {out}/summary.json  plot: {out}/accuracy.png"
        f"{scores}{fitted}"
    )


def model_from(
    name: str | None,
    base_url: str | None,
    embedded: str | None,
    retry: RetryPolicy,
    *,
    logprobs: bool = True,
    continuation: Continuation | None = None,
) -> OpenAIChat:
    """The model the arguments name: an embedded one, or one on ``base_url``."""
    make = partial(OpenAIChat, retry=retry, logprobs=logprobs, continuation=continuation)
    return make(name, embedded=embedded) if embedded else make(name, base_url=base_url)


def _searches(
    args: argparse.Namespace, model: OpenAIChat, judge_model: OpenAIChat | None
) -> dict[str, SearchFactory]:
    """Each ``--search`` strategy from the registry, as a node for each budget ``k``: ``k``
    solutions, and ``--keep`` and ``--subtrees`` where it has them (shrunk to divide ``k``);
    deepconf's with ``--keep-share`` and, online, a warm-up of min(4, k - 1)."""
    parts = Parts(
        model,
        step_verifier=step_verifier_for(args.judge or "math_step", judge_model)
        if judge_model
        else None,
        answer_key=last_number,
        equivalence=equivalence("math" if args.answer == "math" else last_number),
    )

    def factory(name: str) -> SearchFactory:
        row = registry.strategy("deepconf" if name in CONFIDENCE_SEARCHES else name)

        def node(k: int) -> StrategyNode[Any]:
            values = {"n": k, "temperature": args.temperature, "max_tokens": args.max_tokens}
            values |= {"keep": math.gcd(k, args.keep), "subtrees": math.gcd(k, args.subtrees)}
            values |= {"keep_share": args.keep_share}
            if name == "deepconf_online" and k > 1:
                values |= {"mode": "online", "warmup": min(4, k - 1)}
            return row.node(parts, values)

        return node

    return {name: factory(name) for name in args.search}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model arguments every evaluation command takes."""
    parser.add_argument("--model", help="model name (default: $TTC_MODEL, or the server's only)")
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the embedded model)",
    )
    parser.add_argument(
        "--embedded", choices=["0.5b", "1.5b"], help="generate with this embedded model"
    )
    parser.add_argument("--judge-model", help="a different judge model on the same endpoint")
    parser.add_argument(
        "--judge-embedded", choices=["0.5b", "1.5b"], help="judge with this embedded model"
    )
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, help="longest draft")
    parser.add_argument("--retries", type=int, default=6, help="tries per call (default 6)")


class ProgressBar:
    """A progress bar on stderr; the context value is a ``(done, total)`` callback."""

    def __init__(self, err: Console, label: str, total: int) -> None:
        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=err, transient=True)
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> Callable[[int, int], None]:
        self.progress.__enter__()
        return lambda done, total: self.progress.update(self.task, completed=done)

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)
