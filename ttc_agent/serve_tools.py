"""Tool calls in ``ttc serve``: what the judge reads of a candidate that calls tools, and how
the proxy chooses among candidates that call tools.

A judge reads candidates as text, so the sampler ``ttc serve`` gives a strategy
(``ToolCallsShown``) writes each reply's tool calls after its content, a line per call:
``Calls get_weather with {"city": "Paris"}`` (the arguments as canonical JSON). The judge's
fence wraps them as it wraps any candidate text; the client gets the content back without them
(``content_of``).

When the strategy's choice calls tools, the proxy chooses among the candidates that call tools
(``choose_tool_call``): the calls that most of them make win (the same names and arguments,
compared as canonical JSON, in any order), when at least two make them and no other calls are
as common (``selection`` ``tool_call_agreement``). Otherwise, a tie or no two alike, the judge's
best-scored of the tied candidates wins (``tool_call_judge``): its scores where the strategy
judged them (best_of_n, refine); where it did not (majority_vote) the judge is asked then, and
billed as verification.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ttc_agent.budget import BudgetExhausted
from ttc_agent.errors import SamplesFailed
from ttc_agent.models.protocol import ChatModel, OnCompletion
from ttc_agent.types import (
    Candidate,
    Completion,
    Message,
    Score,
    SearchResult,
    SearchUsage,
    ToolCall,
    Usage,
)
from ttc_agent.verifiers.protocol import Verifier


def canonical(arguments: str) -> str:
    """Tool-call arguments as canonical JSON (sorted keys), or as written when not JSON.

    Example:
        >>> canonical('{"unit":"C", "city":"Paris"}')
        '{"city": "Paris", "unit": "C"}'
    """
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
    except json.JSONDecodeError:
        return arguments


def _lines(calls: Sequence[ToolCall]) -> str:
    return "\n".join(f"Calls {call.name} with {canonical(call.arguments)}" for call in calls)


def shown(content: str, calls: Sequence[ToolCall]) -> str:
    """A reply as the judge reads it: its content, then a line per tool call.

    Example:
        >>> print(shown("Let me check.", [ToolCall(id="c", name="f", arguments='{"a":1}')]))
        Let me check.
        <BLANKLINE>
        Calls f with {"a": 1}
    """
    return "\n\n".join(part for part in (content, _lines(calls)) if part)


def content_of(text: str, calls: Sequence[ToolCall]) -> str:
    """The content of a reply that ``shown`` wrote as ``text``.

    Example:
        >>> calls = [ToolCall(id="c", name="f", arguments="{}")]
        >>> content_of(shown("Hi", calls), calls), content_of(shown("", calls), calls)
        ('Hi', '')
    """
    if not calls:
        return text
    return text.removesuffix(_lines(calls)).removesuffix("\n\n")


def call_key(calls: Sequence[ToolCall]) -> str:
    """What candidates agree on when they make the same calls: names and canonical arguments,
    in any order.

    Example:
        >>> a = ToolCall(id="1", name="f", arguments='{"x": 1, "y": 2}')
        >>> b = ToolCall(id="2", name="f", arguments='{"y":2,"x":1}')
        >>> call_key([a]) == call_key([b])
        True
    """
    return json.dumps(sorted([call.name, canonical(call.arguments)] for call in calls))


def _with_calls_shown(completion: Any) -> Any:
    if not isinstance(completion, Completion) or not completion.tool_calls:
        return completion
    return completion.model_copy(update={"text": shown(completion.text, completion.tool_calls)})


class ToolCallsShown:
    """A chat model whose completions' text shows their tool calls (see ``shown``), so that a
    strategy's judge judges the calls; everything else is the wrapped model's.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> ToolCallsShown(OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")).name
        'm'
    """

    def __init__(self, model: ChatModel) -> None:
        self.model = model

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.model.name

    async def sample(
        self,
        messages: Sequence[Message],
        n: int = 1,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        prefix: str | None = None,
        on_completion: OnCompletion | None = None,
    ) -> list[Completion]:
        """The wrapped model's completions, their tool calls shown in their text."""
        try:
            completions = await self.model.sample(
                messages,
                n,
                temperature=temperature,
                max_tokens=max_tokens,
                top_logprobs=top_logprobs,
                stop=stop,
                json_schema=json_schema,
                prefix=prefix,
                on_completion=on_completion,
            )
        except (BudgetExhausted, SamplesFailed) as exc:  # what arrived goes on, shown alike
            if isinstance(exc.partial, list):
                exc.partial = [_with_calls_shown(c) for c in exc.partial]
            raise
        return [_with_calls_shown(completion) for completion in completions]

    async def check_continuation(self) -> None:
        """The wrapped model's check."""
        await self.model.check_continuation()

    async def aclose(self) -> None:
        """Close the wrapped model."""
        await self.model.aclose()


async def choose_tool_call(
    result: SearchResult, prompt: Sequence[Message], judge: Verifier
) -> SearchResult:
    """``result`` with its tool call chosen by agreement, else by the judge (see the module's
    description); unchanged when its choice calls no tool or no other candidate calls one."""
    if result.best is None or not result.best.tool_calls:
        return result
    groups: dict[str, list[int]] = {}
    for i, candidate in enumerate(result.candidates):
        if candidate.tool_calls:
            groups.setdefault(call_key(candidate.tool_calls), []).append(i)
    if sum(len(members) for members in groups.values()) == 1:
        return result
    votes = {key: len(members) for key, members in groups.items()}
    most = max(votes.values())
    leaders = [key for key, count in votes.items() if count == most]
    candidates, spent, limited = list(result.candidates), Usage(), False
    if most >= 2 and len(leaders) == 1:
        tied, selection = groups[leaders[0]], "tool_call_agreement"
    else:
        tied, selection = [i for key in leaders for i in groups[key]], "tool_call_judge"
        candidates, spent, limited = await _judged(candidates, tied, prompt, judge)
    chosen = max(tied, key=lambda i: (_value(candidates[i].score), -i))
    usage = result.usage
    return result.model_copy(
        update={
            "candidates": candidates,
            "chosen": chosen,
            "selection": selection,
            "group_scores": {key: float(count) for key, count in votes.items()},
            "usage": SearchUsage(
                generation=usage.generation, verification=usage.verification + spent
            ),
            "budget_limited": result.budget_limited or limited,
        }
    )


async def _judged(
    candidates: list[Candidate], tied: list[int], prompt: Sequence[Message], judge: Verifier
) -> tuple[list[Candidate], Usage, bool]:
    """The candidates with the tied ones the strategy left unjudged judged now; what that
    cost; whether the budget stopped it."""
    unjudged = [i for i in tied if candidates[i].score is None]
    if not unjudged:
        return candidates, Usage(), False
    limited = False
    scores: list[Score | None]
    try:
        scores = list(await judge.score(prompt, [candidates[i].text for i in unjudged]))
    except BudgetExhausted as exc:  # judge those it could; the rest stay unscored
        scores, limited = list(exc.partial or [None] * len(unjudged)), True
    judged = list(candidates)
    for i, score in zip(unjudged, scores, strict=True):
        judged[i] = candidates[i].model_copy(update={"score": score})
    spent = Usage.sum([score.usage for score in scores if score is not None])
    return judged, spent, limited


def _value(score: Score | None) -> float:
    return score.value if score is not None else float("-inf")
