"""Reading a rubric judge's verdict: its JSON object, validated against the card, G-Eval's
expected score at each criterion's score token where the server returned logprobs, and the
``Score`` the verdict gives.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from typing import Any

from pydantic import BaseModel, Field, ValidationError, create_model

from ttc_agent.errors import JudgeOutputError
from ttc_agent.types import Completion, Score, Usage
from ttc_agent.verifiers.judge_card import JudgeCard


def json_object(raw: str) -> Any:
    """The JSON object in a judge's reply (from its first ``{`` to its last ``}``).

    Raises:
        ValueError: there is none, or it is not valid JSON (the judge is asked again).

    Example:
        >>> json_object('Sure: {"score": 4}')
        {'score': 4}
    """
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the reply")
    try:
        return json.loads(raw[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None


def verdict_model(card: JudgeCard) -> type[BaseModel]:
    """The pydantic model of a verdict under ``card``: a reason and a score per criterion."""
    score = (int, Field(ge=card.scale.min, le=card.scale.max))
    criterion = create_model(f"{card.name}_criterion", reason=(str, ...), score=score)
    fields: dict[str, Any] = {c.name: (criterion, ...) for c in card.criteria}
    return create_model(f"{card.name}_verdict", **fields)


def parse_verdict(model: type[BaseModel], raw: str, nonce: str | None = None) -> BaseModel:
    """The verdict in ``raw``, validated; with a ``nonce``, only a verdict that echoes it.

    Raises:
        ValueError: no valid verdict, or not this call's nonce (the judge is asked again).

    Example:
        >>> from ttc_agent.verifiers.judge_card import load_card
        >>> model = verdict_model(load_card("math_step"))
        >>> parse_verdict(model, '{"correctness": {"reason": "ok", "score": 1}}', "ab12")
        Traceback (most recent call last):
        ...
        ValueError: the verdict does not echo this call's nonce 'ab12' (got None)
    """
    data = json_object(raw)
    if nonce is not None:
        echoed = data.get("nonce") if isinstance(data, dict) else None
        if echoed != nonce:
            raise ValueError(
                f"the verdict does not echo this call's nonce {nonce!r} (got {echoed!r})"
            )
        data = {key: value for key, value in data.items() if key != "nonce"}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None


def expected_scores(completion: Completion, card: JudgeCard) -> dict[str, float]:
    """G-Eval: the probability-weighted score at each criterion's score token."""
    if not completion.logprobs:
        return {}
    offsets, position = [], 0
    for token in completion.logprobs:
        offsets.append(position)
        position += len(token.token)
    text = "".join(token.token for token in completion.logprobs)
    labels = {str(point): point for point in card.scale.points}
    expected: dict[str, float] = {}
    for criterion in card.criteria:
        key = re.search(rf'"{criterion.name}"\s*:\s*\{{', text)
        if key is None:
            continue
        value = re.compile(r'"score"\s*:\s*"?(-?\d+)').search(text, key.end())
        if value is None:
            continue
        index = bisect.bisect_right(offsets, value.start(1)) - 1  # the token holding it
        token = completion.logprobs[index]
        if token.token.strip().strip('"') != value.group(1):
            continue  # the score shares its token with other text: no clean distribution
        probabilities: dict[int, float] = {}
        for alternative, logprob in (token.top or {token.token: token.logprob}).items():
            point = labels.get(alternative.strip().strip('"'))
            if point is not None:
                probabilities[point] = probabilities.get(point, 0.0) + math.exp(logprob)
        mass = sum(probabilities.values())
        if mass > 1e-6:
            expected[criterion.name] = sum(p * point for point, p in probabilities.items()) / mass
    return expected


def verdict_score(
    card: JudgeCard, verdict: BaseModel, completion: Completion, usage: Usage, mode: str
) -> Score:
    """The score of a parsed verdict: the integers the judge wrote, or, in ``logprobs`` and
    ``auto`` modes, G-Eval's expected score where the reply's logprobs give one.

    Raises:
        JudgeOutputError: ``logprobs`` mode, and the endpoint returned no usable logprobs.
    """
    names = [criterion.name for criterion in card.criteria]
    parsed = {name: float(getattr(verdict, name).score) for name in names}
    weighted = expected_scores(completion, card) if mode != "structured" else {}
    if mode == "logprobs" and len(weighted) < len(parsed):
        missing = sorted(set(parsed) - set(weighted))
        raise JudgeOutputError(
            f"judge {card.name!r} is in logprobs mode but the endpoint returned no "
            f"usable logprobs for {missing}; use mode='auto' or 'structured'",
            raw=completion.text,
        )
    criteria = parsed | weighted
    total = card.weighted_total(criteria)
    read = "logprobs" if len(weighted) == len(parsed) else "mixed" if weighted else "structured"
    rationale = "\n".join(f"{name}: {getattr(verdict, name).reason}" for name in names)
    return Score(
        value=total,
        normalized=card.normalize(total),
        criteria=criteria,
        rationale=rationale,
        mode=read,
        usage=usage,
    )
