"""refine (sequential revision) against the loopback server."""

from __future__ import annotations

import pytest

from ttc_agent import OpenAIChat, RubricJudge
from ttc_agent.strategies.refine import refine
from ttc_agent.testing import fenced, judge_reply

CRITERIA = ["clarity", "style", "engagement", "relevance"]


def writer(quality: dict[str, int], drafts: list[str], revisions: dict[str, list[str]]):
    """First drafts in order, then each draft's revisions in order; the judge scores by text."""
    drafted = iter(drafts)
    revised = {parent: iter(texts) for parent, texts in revisions.items()}

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(CRITERIA, quality[candidate]))
        if "A reviewer scored" in request.last_user:
            return next(revised[request.messages[-2]["content"]])
        return next(drafted)

    return handler


@pytest.fixture
async def model_for(loopback):
    models = []

    def make(handler):
        server = loopback(handler, honour_n=True)  # one request per n: choices in script order
        model = OpenAIChat("m", base_url=server.base_url, api_key="k")
        models.append(model)
        return server, model, RubricJudge("writing_quality", model, mode="structured")

    yield make
    for model in models:
        await model.aclose()


async def test_revises_with_feedback_and_keeps_the_best(model_for):
    quality = {"draft": 3, "better": 4, "worse": 1, "best": 5}
    server, model, judge = model_for(
        writer(quality, ["draft"], {"draft": ["better"], "better": ["worse", "best"]})
    )
    result = await refine(model, judge, rounds=3).ainvoke("Write a line.")
    assert [c.text for c in result.candidates] == ["draft", "better", "worse", "best"]
    assert [c.round for c in result.candidates] == [0, 1, 2, 3]
    # "worse" was never revised: round 3 revised the best seen ("better"), not the last draft
    assert [c.parent for c in result.candidates] == [None, 0, 1, 1]
    assert result.answer == "best"
    revision = [r for r in server.requests if "A reviewer scored" in r.last_user]
    feedback = revision[0].last_user
    assert "scored your answer 3.00 (scale 1 to 5)" in feedback and "- relevance: 3.00" in feedback
    assert "clarity: clarity is 3" in feedback  # the judge's reasons
    assert revision[0].messages[-2] == {"role": "assistant", "content": "draft"}


async def test_never_returns_a_draft_below_the_best_seen(model_for):
    quality = {"good": 4, "bad": 2, "awful": 1}
    _, model, judge = model_for(writer(quality, ["good"], {"good": ["bad", "awful"]}))
    result = await refine(model, judge, rounds=2).ainvoke("Q")
    assert result.answer == "good"
    assert result.best.score.value == max(c.score.value for c in result.candidates)


async def test_stops_early_at_the_threshold(model_for):
    quality = {"draft": 3, "great": 5, "unused": 1}
    server, model, judge = model_for(writer(quality, ["draft"], {"draft": ["great", "unused"]}))
    result = await refine(model, judge, rounds=5, threshold=4.5).ainvoke("Q")
    assert [c.text for c in result.candidates] == ["draft", "great"]
    assert len(server.requests) == 4  # draft, its judging, one revision, its judging


async def test_width_expands_the_kept_drafts(model_for):
    quality = {"a": 2, "b": 3, "c": 1, "d": 1, "a1": 1, "a2": 4, "b1": 3, "b2": 2}
    _, model, judge = model_for(
        writer(quality, ["a", "b", "c", "d"], {"a": ["a1", "a2"], "b": ["b1", "b2"]})
    )
    node = refine(model, judge, rounds=1, width=2, keep=2)
    result = await node.ainvoke("Q")
    assert len(result.candidates) == 4 + 2 * 2  # keep x width first drafts, then revisions
    revised = {c.text: result.candidates[c.parent].text for c in result.candidates[4:]}
    assert revised == {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
    assert result.answer == "a2"
    assert result.usage.verification.calls == 8
