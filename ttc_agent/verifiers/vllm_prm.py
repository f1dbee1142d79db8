"""A process reward model (PRM) served by vLLM, scored over HTTP with its ``/pooling`` API.

One ``POST {base_url}/pooling`` per solution, ``{"model", "messages" | "input", "task":
"token_classify"}``; vLLM answers with one row of class probabilities per pooled token
(``data[0].data``). Which tokens are pooled is set when the server starts:

- STEP pooling (the default for ``Qwen2ForProcessRewardModel``, or ``--pooler-config
  '{"pooling_type": "STEP", "step_tag_id": ..., "returned_token_ids": [...]}'``): one row per step
  tag. Leave ``step_tag_id`` unset.
- ALL pooling: one row per token. Pass ``step_tag_id`` and the rows at that token are picked here,
  from the token ids that ``POST {base_url}/tokenize`` returns for the same input.

The score of a step is the probability of the good class in its row, renormalised over the good
and bad columns (``reward_token_ids``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from ttc_agent.budget import prompt_token_bound, within_budget
from ttc_agent.errors import (
    ConfigurationError,
    ModelError,
)
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.metering import ONE_CALL, Cost
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.types import Message, StepScores, Usage
from ttc_agent.verifiers.fence import neutralise
from ttc_agent.verifiers.prm_families import QWEN_PRM_SYSTEM
from ttc_agent.verifiers.transformers_prm import question_of

InputFormat = Literal["chat", "text"]


class VLLMPRM:
    """Scores every step of partial solutions with a PRM that vLLM serves.

    Args:
        model: the served model name.
        base_url: the server, ``http://host:8000`` or ``http://host:8000/v1`` (``/v1`` is
            dropped: the pooling API is at the root).
        api_key: the server's ``--api-key``, if it has one.
        step_tag: the text put after every step, e.g. ``"<extra_0>"`` for Qwen2.5-Math-PRM or
            ``" ки\\n"`` for Math-Shepherd. It must be one token of the served model, the one
            whose id the server (or ``step_tag_id``) pools at.
        step_tag_id: the token id of ``step_tag``, for a server that pools ALL tokens: the rows
            at this token are picked here. Leave unset for a server that pools at step tags.
        reward_token_ids: the (good, bad) columns of each row: vocabulary ids when the server
            returns every token's whole distribution, ``(0, 1)`` when it was started with
            ``returned_token_ids`` [good, bad]. Unset: a two-class head whose class 1 means
            "correct", as Qwen2.5-Math-PRM's.
        input_format: ``chat`` sends ``messages`` (``system``, the question, then the steps as
            the assistant turn) for the server's chat template; ``text`` sends
            ``f"{question} {steps}"`` as ``input``, as Math-Shepherd was trained.
        system: the system prompt of the ``chat`` format (None: no system message).
        max_concurrency: requests in flight at once (None: every solution of a round at once,
            up to 256).
        timeout: seconds for one request.
        retry: when to retry (429, 5xx, timeouts, dropped connections; never other 4xx).

    Example:
        >>> prm = VLLMPRM("Qwen/Qwen2.5-Math-PRM-7B", base_url="http://127.0.0.1:8000/v1")
        >>> prm.base_url
        'http://127.0.0.1:8000'
        >>> # [scores] = await prm.score_steps(prompt, [["3 * 4 = 12.", "2 + 12 = 14."]])
    """

    preferred_aggregate = "last"  # trained to value the whole prefix at each step
    batch_size = 1  # one request per solution, so that strategies checkpoint each one

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        step_tag: str = "<extra_0>",
        step_tag_id: int | None = None,
        reward_token_ids: tuple[int, int] | None = None,
        input_format: InputFormat = "chat",
        system: str | None = QWEN_PRM_SYSTEM,
        max_concurrency: int | None = None,
        timeout: float = 600.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not step_tag:
            raise ConfigurationError("step_tag must not be empty")
        if input_format not in ("chat", "text"):
            raise ConfigurationError(f"input_format must be chat or text, got {input_format!r}")
        if reward_token_ids is not None and len(reward_token_ids) != 2:
            raise ConfigurationError(
                f"reward_token_ids must be (good, bad), got {reward_token_ids}"
            )
        self.name = model
        self.base_url = _root(base_url)
        self.step_tag = step_tag
        self.step_tag_id = step_tag_id
        self.reward_token_ids = reward_token_ids
        self.input_format: InputFormat = input_format
        self.system = system
        self.endpoint = Endpoint(
            self.base_url, api_key, timeout=timeout, retry=retry, max_concurrency=max_concurrency
        )

    def __repr__(self) -> str:  # never shows the key
        return f"VLLMPRM({self.name!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> VLLMPRM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections held by this verifier."""
        await self.endpoint.aclose()

    async def score_steps(
        self, prompt: Sequence[Message], solutions: Sequence[Sequence[str]]
    ) -> list[StepScores]:
        """Score every step of each solution to the last user message of ``prompt``.

        Each ``StepScores`` carries the prompt tokens and the one pooling call it cost. Under a
        budget every pooling call is metered like any model call.
        """
        question = neutralise(question_of(prompt))  # quoted text: control markers stay text
        scored = await asyncio.gather(
            *(self._score_one(question, [neutralise(s) for s in steps]) for steps in solutions),
            return_exceptions=True,
        )
        return within_budget(scored)  # a budget stop keeps the scores that arrived (partial)

    async def _score_one(self, question: str, steps: Sequence[str]) -> StepScores:
        if not steps:
            return StepScores(steps=[])
        request = pooling_input(
            self.name, question, steps, self.step_tag, self.input_format, self.system
        )
        bound = prompt_token_bound(request.get("input") or request["messages"])
        cost = Cost(self.name, bound, 0, usage=_pooling_usage)
        pooling = self._post("/pooling", {**request, "task": "token_classify"}, cost)
        if self.step_tag_id is None:
            rows, prompt_tokens = _pooled_rows(await pooling)
        else:  # ALL pooling: the rows at the step tag's id, found from the same input's tokens
            body, tokens = await asyncio.gather(pooling, self._token_ids(request))
            rows, prompt_tokens = _pooled_rows(body)
            rows = _rows_at(self.step_tag_id, rows, tokens, self.base_url)
        if len(rows) != len(steps):
            raise ConfigurationError(_mismatch(self, len(steps), len(rows)))
        good, bad = self.reward_token_ids or (1, 0)
        return StepScores(
            steps=[_good_probability(row, good, bad) for row in rows],
            usage=Usage(prompt_tokens=prompt_tokens, calls=1),
        )

    async def _token_ids(self, request: dict[str, Any]) -> list[int]:
        if "input" in request:
            request = {"model": self.name, "prompt": request["input"]}
        body = await self._post("/tokenize", request, ONE_CALL)
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(tokens, list):
            raise ModelError(f"{self.base_url}/tokenize answered without a token list")
        return [int(token) for token in tokens]

    async def _post(self, path: str, body: dict[str, Any], cost: Cost) -> Any:
        """A metered POST: under a budget it reserves ``cost`` and settles to what it billed."""
        return await self.endpoint.call(
            lambda client: client.post(path, cast_to=object, body=body), cost=cost
        )


def _root(base_url: str) -> str:
    """The server root: the pooling and tokenize APIs are not under ``/v1``.

    Example:
        >>> _root("http://h:8000/v1/"), _root("http://h:8000")
        ('http://h:8000', 'http://h:8000')
    """
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def _pooling_usage(body: Any) -> Usage | None:
    """What a pooling call billed (None when the server does not say)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    return Usage(prompt_tokens=int(usage["prompt_tokens"]), calls=1)


def _pooled_rows(body: Any) -> tuple[list[list[float]], int]:
    """The per-token rows of a one-input pooling response and its prompt tokens."""
    try:
        rows = body["data"][0]["data"]
        prompt_tokens = int((body.get("usage") or {}).get("prompt_tokens", 0))
    except (KeyError, IndexError, TypeError, ValueError):
        raise ModelError(f"not a vLLM pooling response: {str(body)[:200]}") from None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ModelError("the pooling response has no per-token rows: is the model a PRM?")
    return rows, prompt_tokens


def _good_probability(row: list[float], good: int, bad: int) -> float:
    """P(good) among the good and bad classes of one row of probabilities."""
    if max(good, bad) >= len(row):
        raise ConfigurationError(
            f"reward_token_ids ({good}, {bad}) do not fit rows of {len(row)} values"
        )
    mass = row[good] + row[bad]
    if mass <= 0:
        raise ModelError(f"the good and bad classes have no probability in the row {row[:4]}")
    return row[good] / mass


def pooling_input(
    model: str,
    question: str,
    steps: Sequence[str],
    step_tag: str,
    input_format: InputFormat,
    system: str | None,
) -> dict[str, Any]:
    """The input of one solution's pooling request, each step followed by the step tag: chat
    ``messages`` (the server's chat template renders them), or the ``input`` text.

    Example:
        >>> pooling_input("m", "Q", ["a", "b"], "<t>", "text", None)
        {'model': 'm', 'input': 'Q a<t>b<t>'}
    """
    solution = "".join(step + step_tag for step in steps)
    if input_format == "text":
        return {"model": model, "input": f"{question} {solution}"}
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": solution}]
    return {"model": model, "messages": messages, "add_generation_prompt": False}


def _rows_at(tag: int, rows: list[list[float]], tokens: list[int], where: str) -> list[list[float]]:
    """The pooled rows of an ALL-pooling server at the step tag's token id."""
    if len(tokens) != len(rows):
        raise ConfigurationError(
            f"{where} pooled {len(rows)} tokens but tokenized {len(tokens)}: "
            "with step_tag_id set the server must pool ALL tokens"
        )
    return [row for row, token in zip(rows, tokens, strict=True) if token == tag]


def _mismatch(prm: VLLMPRM, steps: int, rows: int) -> str:
    """Why a solution's steps and its pooled rows do not match, and what to do."""
    where = (
        f"the token step_tag_id={prm.step_tag_id}"
        if prm.step_tag_id is not None
        else "the server's step_tag_id (STEP pooling)"
    )
    return (
        f"{prm.base_url} scored {rows} step tags for {steps} steps: step_tag "
        f"{prm.step_tag!r} must be exactly one token, {where}, and appear nowhere inside a "
        "step. Start vLLM with STEP pooling at that token, or pass step_tag_id= for a server "
        "that pools ALL tokens"
    )
