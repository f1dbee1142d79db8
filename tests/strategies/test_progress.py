"""Progress events tell the truth: every bar starts at 0 of a known total, counts go up within
their total, steps and rounds know theirs, and step judging reports too."""

from __future__ import annotations

from itertools import groupby

from langchain_core.messages import HumanMessage

from ttc_agent import LLMStepJudge, RubricJudge, beam_search, best_of_n, dvts, refine
from ttc_agent.display import ProgressBars
from ttc_agent.testing import Reply, fenced, judge_reply

HELPFULNESS = ["correctness", "completeness", "specificity", "clarity"]


def handler(request):
    if fenced(request.last_user) is not None and request.body.get("max_tokens") == 2:
        return Reply("1", alternatives={0: {"1": -0.2, "0": -1.7}})  # the step judge
    if fenced(request.last_user) is not None:
        return judge_reply(dict.fromkeys(HELPFULNESS, 3))
    if request.body.get("stop"):  # a step
        depth = (request.prefix or "").count("\n\n")
        return "The answer is 4." if depth >= 2 else f"Step {depth + 1}.\n\nmore"
    return f"Draft {request.index}.{request.choice}"


async def events_of(node) -> list[dict]:
    return [
        chunk
        async for chunk in node.graph.astream(
            {"messages": [HumanMessage("Q")]}, stream_mode="custom"
        )
        if isinstance(chunk, dict) and "ttc" in chunk
    ]


def counts_in_order(events: list[dict], kind: str) -> list[list[tuple[int, int]]]:
    """(done, total) of each run of ``kind`` events, split where a new count starts at 0."""
    runs: list[list[tuple[int, int]]] = []
    for event in events:
        if event["ttc"] == kind:
            if event["done"] == 0 or not runs:
                runs.append([])
            runs[-1].append((event["done"], event["total"]))
    return runs


async def test_sampling_shows_zero_of_n_before_the_samples_arrive(model_for):
    _, model = model_for(handler, honour_n=True)  # all n arrive in one response
    events = await events_of(best_of_n(model, RubricJudge("helpfulness", model), n=4))
    assert events[0] == {"ttc": "sampled", "strategy": "best_of_n", "done": 0, "total": 4}
    assert counts_in_order(events, "sampled") == [[(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]]
    assert counts_in_order(events, "scored") == [[(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]]


async def test_beam_search_counts_each_step_as_a_whole_and_knows_its_steps(model_for):
    _, model = model_for(handler, honour_n=True)
    node = beam_search(model, LLMStepJudge(model), n=4, keep=2, max_steps=5)
    events = await events_of(node)
    steps = [(e["step"], e["total"]) for e in events if e["ttc"] == "step"]
    assert steps[0] == (0, 5)  # shown from the start, with the most steps it may take
    assert [s for s, _ in steps] == list(range(len(steps)))
    assert steps[-1] == (len(steps) - 1, len(steps) - 1)  # finished early: the total is met
    # one sampling count per step, 0..4 of 4 (not 0..2 per parent), and a judging count
    assert counts_in_order(events, "sampled") == [[(i, 4) for i in range(5)]] * (len(steps) - 1)
    assert counts_in_order(events, "scored") == [[(0, 4), (4, 4)]] * (len(steps) - 1)


async def test_dvts_counts_name_their_tree(model_for):
    _, model = model_for(handler, honour_n=True)
    events = await events_of(dvts(model, LLMStepJudge(model), n=4, subtrees=2, max_steps=5))
    sampled = [e for e in events if e["ttc"] == "sampled"]
    assert {e["tree"] for e in sampled} == {0, 1}
    for _, tree_events in groupby(sorted(sampled, key=lambda e: e["tree"]), lambda e: e["tree"]):
        assert {e["total"] for e in tree_events} == {2}


async def test_refine_knows_its_rounds_and_counts_revisions_as_one(model_for):
    _, model = model_for(handler, honour_n=True)
    node = refine(model, RubricJudge("helpfulness", model), rounds=2, width=2, keep=2)
    events = await events_of(node)
    rounds = [(e["round"], e["total"]) for e in events if e["ttc"] == "round"]
    assert rounds == [(0, 2), (1, 2), (2, 2)]
    assert events[0]["ttc"] == "round"
    # the first 4 drafts, then each round's 2 x 2 revisions counted together
    assert counts_in_order(events, "sampled") == [[(i, 4) for i in range(5)]] * 3


def test_the_bars_add_up_trees_and_follow_changing_totals():
    bars = ProgressBars(None)
    bars.update({"ttc": "step", "step": 0, "total": 40, "tree": 0})
    bars.update({"ttc": "step", "step": 0, "total": 40, "tree": 1})
    bars.update({"ttc": "sampled", "done": 0, "total": 4, "tree": 0})
    bars.update({"ttc": "sampled", "done": 0, "total": 4, "tree": 1})
    bars.update({"ttc": "sampled", "done": 3, "total": 4, "tree": 1})
    bars.update({"ttc": "step", "step": 1, "total": 40, "tree": 1})
    assert bars.shown() == {"sampling": (3, 8), "steps": (1, 40)}
    bars.update({"ttc": "step", "step": 2, "total": 2, "tree": 0})  # tree 0 ended early
    assert bars.shown()["steps"] == (2, 40)  # the deepest tree, of the most steps any may take
    bars.update({"ttc": "selected", "index": 0})  # not a bar
    assert set(bars.shown()) == {"sampling", "steps"}


def test_the_bars_follow_a_count_that_starts_again_with_a_new_total():
    bars = ProgressBars(None)
    bars.update({"ttc": "round", "round": 0, "total": 3})
    bars.update({"ttc": "sampled", "done": 0, "total": 4})
    bars.update({"ttc": "sampled", "done": 4, "total": 4})
    bars.update({"ttc": "round", "round": 1, "total": 3})
    bars.update({"ttc": "sampled", "done": 0, "total": 2})
    assert bars.shown() == {"revising": (1, 3), "sampling": (0, 2)}
