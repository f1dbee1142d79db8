"""ab_mcts against the loopback server: a tree of drafts where each expansion goes wider (a
fresh answer, or another revision of a draft) or deeper (into a draft's revisions) as Thompson
sampling of the scores seen says."""

from __future__ import annotations

import random

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from ttc_agent import ConfigurationError, LLMStepJudge, RubricJudge, ab_mcts
from ttc_agent.answers import last_number
from ttc_agent.strategies import search_result
from ttc_agent.strategies.ab_mcts import ROOT, Tree
from ttc_agent.testing import Reply, fenced, judge_reply
from ttc_agent.types import Score, Usage

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def world(fresh: int, revised: int):
    """Fresh answers are "draft <k>", scored ``fresh``; revisions "<draft> revised", scored
    ``revised`` (the judge's scale is 1..5)."""
    counter = {"drafts": 0}

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(
                dict.fromkeys(CRITERIA, revised if "revised" in candidate else fresh)
            )
        if "A reviewer scored" in request.last_user:  # refine's revision prompt
            return request.messages[-2]["content"] + " revised"
        counter["drafts"] += 1
        return f"draft {counter['drafts']}"

    return handler


def generation(server):
    return [r for r in server.requests if fenced(r.last_user) is None]


@pytest.mark.parametrize(
    ("fresh", "revised", "favoured"), [(2, 5, "deeper"), (5, 1, "wider")], ids=["deeper", "wider"]
)
async def test_wider_or_deeper_follows_the_scores(model_for, fresh, revised, favoured):
    _, model = model_for(world(fresh, revised))
    judge = RubricJudge("helpfulness", model, mode="structured")
    counts = {"wider": 0, "deeper": 0}
    for seed in range(3):
        result = await ab_mcts(model, judge, n=12, batch=1, seed=seed).ainvoke("Q")
        assert result.settings["wider"] + result.settings["deeper"] == 12
        counts["wider"] += result.settings["wider"]
        counts["deeper"] += result.settings["deeper"]
    other = "wider" if favoured == "deeper" else "deeper"
    assert counts[favoured] >= 2 * counts[other]
    if favoured == "deeper":
        assert result.settings["depth"] >= 3  # revisions of revisions


async def test_a_batch_grows_each_chosen_draft_in_one_request_and_records_the_tree(model_for):
    server, model = model_for(world(2, 4))
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await ab_mcts(model, judge, n=8, batch=4, seed=1).ainvoke("Q")
    first, *later = generation(server)
    assert first.body["n"] == 4 and len(first.messages) == 1  # round 1: fresh answers at once
    revisions = [r for r in later if "A reviewer scored" in r.last_user]
    assert all(r.messages[-2]["role"] == "assistant" for r in revisions)  # the draft, quoted
    assert all("Revise your answer" in r.last_user for r in revisions)  # with its feedback
    assert len({r.messages[-2]["content"] for r in later if len(r.messages) > 1}) == len(revisions)
    assert sum(r.body.get("n", 1) for r in later) == 4
    assert len(result.candidates) == 8 and {c.round for c in result.candidates} == {1, 2}
    for c in result.candidates:
        if c.parent is not None:
            assert c.text.startswith(result.candidates[c.parent].text)
    assert result.settings["wider"] == sum(c.parent is None for c in result.candidates)
    assert result.answer.endswith("revised")  # a revision scored 4 against the drafts' 2


async def test_progress_threshold_and_overrides(model_for):
    _, model = model_for(world(2, 5))
    node = ab_mcts(model, RubricJudge("helpfulness", model, mode="structured"), n=12, batch=2)
    events = [
        e async for e in node.graph.astream({"messages": [("user", "Q")]}, stream_mode="custom")
    ]
    rounds = [e for e in events if e["ttc"] == "round"]
    assert [e["round"] for e in rounds] == [1, 2, 3, 4, 5, 6] and rounds[0]["total"] == 6
    assert events[-1]["ttc"] == "selected"
    stopped = await node.ainvoke("Q", threshold=5.0)
    assert len(stopped.candidates) < 12 and stopped.best.score.value == 5.0
    with pytest.raises(ConfigurationError, match=r"unknown override\(s\) \['rounds'\]"):
        await node.ainvoke("Q", rounds=2)


class AnswerCheck:
    """An answer check as a verifier: 1 when the last number is 4, else 0."""

    name = "is_four"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls, self.fail_on_call = 0, fail_on_call

    async def score(self, prompt, candidates, *, on_score=None):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("the checker fell over")
        values = [1.0 if last_number(text) == "4" else 0.0 for text in candidates]
        return [Score(value=v, normalized=v, usage=Usage(calls=1)) for v in values]


def arithmetic(request):
    """Fresh answers are wrong (5); a revision, told its score was 0, gets it right (4)."""
    if "A reviewer scored" in request.last_user:
        return "Checked again: 2 + 2 = 4."
    return f"Try {request.choice}: 2 + 2 = 5."


async def test_with_an_answer_check_the_search_finds_and_keeps_the_right_answer(model_for):
    _, model = model_for(arithmetic)
    node = ab_mcts(model, AnswerCheck(), n=6, batch=2, answer_key=last_number)
    result = await node.ainvoke("What is 2 + 2?")
    assert result.selection == "weighted" and last_number(result.answer) == "4"
    assert result.settings["verifier"] == "is_four" and result.settings["deeper"] >= 1


async def test_a_step_judge_scores_whole_drafts_by_their_steps(model_for):
    def steps(request):
        if fenced(request.last_user) is not None:
            return Reply("1", alternatives={0: {"1": -0.1, "0": -2.4}})
        return f"First, 2 + {request.choice}.\n\nSo the answer is {2 + request.choice}."

    server, model = model_for(steps)
    result = await ab_mcts(model, LLMStepJudge(model), n=2, batch=2).ainvoke("Q")
    assert result.settings["verifier"] == "math_step:min"
    judged = [r for r in server.requests if fenced(r.last_user) is not None]
    assert len(judged) == 4  # two steps of each of two drafts


async def test_out_of_budget_the_drafts_so_far_are_the_result(model_for):
    server, model = model_for(world(2, 4), honour_n=False)
    node = ab_mcts(model, AnswerCheck(), n=12, batch=4)
    result = await node.ainvoke("Q", budget={"calls": 6})
    assert result.budget_limited and len(server.requests) == 6
    assert 4 <= len(result.candidates) < 12


async def test_a_resumed_search_grows_the_same_tree_without_paying_twice(model_for):
    server, model = model_for(arithmetic)
    graph = StateGraph(MessagesState)
    graph.add_node("answer", ab_mcts(model, AnswerCheck(fail_on_call=3), n=6, batch=2, seed=4))
    graph.add_edge(START, "answer")
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    with pytest.raises(RuntimeError, match="fell over"):
        await app.ainvoke({"messages": [("user", "Q")]}, config)
    before = len(server.requests)
    resumed = search_result(await app.ainvoke(None, config))
    assert len(server.requests) == before  # every sample was already made
    uninterrupted = await ab_mcts(model, AnswerCheck(), n=6, batch=2, seed=4).ainvoke("Q")
    assert [(c.text, c.parent) for c in resumed.candidates] == [
        (c.text, c.parent) for c in uninterrupted.candidates
    ]


def test_the_tree_counts_each_score_where_it_was_seen():
    tree = Tree()
    tree.add(0, -1, 0.2)
    tree.add(1, 0, 0.8)
    tree.add(2, 1, 1.0)
    assert tree.wider == {-1: [0.2], 0: [0.8], 1: [1.0], 2: []}
    assert tree.deeper == {-1: [0.8, 1.0], 0: [1.0], 1: [], 2: []}
    assert tree.subtree == {0: [0.2, 0.8, 1.0], 1: [0.8, 1.0], 2: [1.0]}

    rng = random.Random(0)
    assert Tree().choose(rng) == ROOT  # nothing yet: a fresh answer
    worse_fresh, better_fresh = Tree(), Tree()
    for k in range(5):  # five fresh answers under the root, five revisions under answer 0
        worse_fresh.add(k, ROOT, 0.1)
        better_fresh.add(k, ROOT, 0.9)
    for k in range(5, 10):
        worse_fresh.add(k, 0, 0.9)
        better_fresh.add(k, 0, 0.1)
    deeper = [worse_fresh.choose(rng) != ROOT for _ in range(200)]
    wider = [better_fresh.choose(rng) == ROOT for _ in range(200)]
    assert sum(deeper) > 150 and sum(wider) > 150


async def test_a_preset_runs_it_with_the_judge(model_for):
    from ttc_agent import Preset, think_harder

    _, model = model_for(world(2, 5))
    judge = RubricJudge("helpfulness", model, mode="structured")
    presets = {"high": Preset(strategy="ab_mcts", n=4)}
    result = await think_harder(model, judge, "high", presets).ainvoke("Q")
    assert result.strategy == "ab_mcts" and len(result.candidates) == 4
    assert result.settings["verifier"] == "helpfulness" and result.settings["preset"]["n"] == 4
