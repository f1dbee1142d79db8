"""majority_vote against the loopback server."""

from __future__ import annotations

import json

import pytest

from ttc_agent import ConfigurationError, OpenAIChat, RubricJudge
from ttc_agent.answers import ExactEquivalence, MathEquivalence, last_number
from ttc_agent.strategies.majority_vote import majority_vote
from ttc_agent.testing import fenced, judge_reply

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def sequence(answers, quality=None):
    state = {"i": 0}

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(CRITERIA, (quality or {}).get(candidate, 3)))
        answer = answers[state["i"] % len(answers)]
        state["i"] += 1
        return answer

    return handler


def test_math_equivalence_groups_forms_of_one_half():
    texts = [
        r"\boxed{1/2}",
        "The answer is 0.5",
        r"\boxed{\frac12}",
        r"$\dfrac{1}{2}$",
        r"\boxed{2}",
    ]
    labels = MathEquivalence().labels(texts)
    assert len(set(labels[:4])) == 1
    assert labels[4] is not None and labels[4] != labels[0]


async def test_largest_group_wins(model_for):
    answers = [
        r"\boxed{2}",
        r"so \boxed{0.5}",
        r"\boxed{\frac{1}{2}}",
        r"\boxed{3}",
        r"\boxed{1/2}",
    ]
    _, model = model_for(sequence(answers))
    result = await majority_vote(model, n=5).ainvoke("What is 1/2?")
    assert result.selection == "majority"
    assert result.chosen == 1  # the first member of the one-half group
    assert sorted(result.group_scores.values()) == [1.0, 1.0, 3.0]
    assert result.candidates[1].key == result.candidates[2].key == result.candidates[4].key


async def test_ties_go_to_the_earliest_group_without_a_verifier(model_for):
    _, model = model_for(sequence(["Lyon", "Paris", "paris.", "lyon!"]))
    result = await majority_vote(model, n=4, answer="exact").ainvoke("Q")
    assert result.group_scores == {"lyon": 2.0, "paris": 2.0}
    assert result.answer == "Lyon"


async def test_ties_go_to_the_higher_mean_score_with_a_verifier(model_for):
    quality = {"Lyon": 2, "Paris": 5, "paris.": 4, "lyon!": 2}
    _, model = model_for(sequence(["Lyon", "Paris", "paris.", "lyon!"], quality))
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await majority_vote(model, n=4, answer="exact", verifier=judge).ainvoke("Q")
    assert result.answer == "Paris"
    assert result.usage.verification.calls == 4


async def test_user_function_equivalence(model_for):
    _, model = model_for(sequence(["x is 4", "I get 5", "so 4", "no idea"]))
    result = await majority_vote(model, n=4, answer=last_number).ainvoke("Q")
    assert result.answer == "x is 4"
    assert [c.key for c in result.candidates] == ["4", "5", "4", None]


async def test_early_stop_at_a_supermajority(model_for):
    server, model = model_for(sequence([r"\boxed{7}"] * 3 + [r"\boxed{8}"] + [r"\boxed{9}"] * 12))
    node = majority_vote(model, n=16, early_stop=0.75, round_size=4)
    result = await node.ainvoke("Q")
    assert len(result.candidates) == 4  # 3 of 4 agree after the first round
    assert result.settings["sampled"] == 4
    assert [r.body.get("n") for r in server.requests] == [4]
    assert result.answer == r"\boxed{7}"


async def test_without_a_supermajority_all_rounds_are_sampled(model_for):
    _, model = model_for(sequence([r"\boxed{1}", r"\boxed{2}"]))
    result = await majority_vote(model, n=8, early_stop=0.75, round_size=4).ainvoke("Q")
    assert len(result.candidates) == 8
    assert [c.index for c in result.candidates] == list(range(8))


async def test_progress_counts_across_rounds(model_for):
    _, model = model_for(sequence(["a", "b"]))
    node = majority_vote(model, n=6, answer="exact", early_stop=0.9, round_size=2)
    events = [
        e async for e in node.graph.astream({"messages": [("user", "Q")]}, stream_mode="custom")
    ]
    sampled = [(e["done"], e["total"]) for e in events if e["ttc"] == "sampled"]
    # each round of 2 is announced (done so far, of 6), then counted one by one
    assert sampled == [(0, 6), (1, 6), (2, 6), (2, 6), (3, 6), (4, 6), (4, 6), (5, 6), (6, 6)]


def test_bad_settings_are_clear_errors():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match="round_size"):
        majority_vote(model, n=4, early_stop=0.8, round_size=4)
    with pytest.raises(ConfigurationError, match="answer must be"):
        majority_vote(model, answer="fuzzy")
    with pytest.raises(ConfigurationError, match="early_stop"):
        majority_vote(model, early_stop=0.3)


def test_exact_equivalence_with_an_extractor():
    labels = ExactEquivalence(last_number).labels(["it is 12", "12.", "twelve"])
    assert labels == ["12", "12", None]


async def test_early_stop_waits_for_the_minimum_votes(model_for):
    # one vote is a 100 % share: stopping on it returned the minority answer 9
    minority_first = [r"\boxed{9}"] + [r"\boxed{7}"] * 7
    server, model = model_for(sequence(minority_first))
    result = await majority_vote(model, n=8, early_stop=0.75, round_size=1).ainvoke("Q")
    assert result.answer == r"\boxed{7}"
    assert result.settings["sampled"] == 4  # 3 of the first 4 votes (the default minimum) agree
    assert result.settings["min_votes"] == 4
    assert len(server.requests) == 4


async def test_early_stop_divides_by_the_votes_cast(model_for):
    # two candidates give no answer: they abstain, so 4 votes for 7 of the 4 cast is 100 %
    answers = ["no idea", "pass", r"\boxed{7}", r"\boxed{7}", r"\boxed{7}", r"\boxed{7}"]
    _, model = model_for(sequence(answers + [r"\boxed{8}"] * 2))
    node = majority_vote(model, n=8, early_stop=0.75, round_size=2)
    result = await node.ainvoke("Q")
    assert result.settings["sampled"] == 6
    assert [c.key for c in result.candidates[:2]] == [None, None]
    assert result.answer == r"\boxed{7}"


async def test_min_votes_is_a_setting(model_for):
    _, model = model_for(sequence([r"\boxed{7}"] * 8))
    node = majority_vote(model, n=8, early_stop=0.75, round_size=1, min_votes=2)
    result = await node.ainvoke("Q")
    assert result.settings["sampled"] == 2
    result = await node.ainvoke("Q", min_votes=6)  # per invocation too
    assert result.settings["sampled"] == 6
    with pytest.raises(ConfigurationError, match=r"min_votes \(9\) must be at most n \(8\)"):
        majority_vote(model, n=8, early_stop=0.75, round_size=1, min_votes=9)


async def test_adaptive_stopping_stops_once_the_leader_is_settled(model_for):
    server, model = model_for(sequence([r"\boxed{7}"] * 4 + [r"\boxed{9}"] * 12))
    result = await majority_vote(model, n=16, stopping="adaptive").ainvoke("Q")
    assert result.settings["sampled"] == 4  # 4 of 4: P(leader is the majority) = 0.969 > 0.95
    assert result.settings["stopping"] == "adaptive"
    assert result.settings["leader_posterior"] == pytest.approx(1 - 0.5**5)
    assert [r.body.get("n") for r in server.requests] == [4]
    assert result.answer == r"\boxed{7}"


async def test_adaptive_stopping_asks_for_more_evidence_than_a_supermajority(model_for):
    answers = [r"\boxed{7}"] * 3 + [r"\boxed{8}"] + [r"\boxed{7}"] * 4 + [r"\boxed{9}"] * 8
    _, model = model_for(sequence(answers))
    share = await majority_vote(model, n=16, early_stop=0.75).ainvoke("Q")
    assert share.settings["sampled"] == 4 and share.settings["stopping"] == "supermajority"
    _, model = model_for(sequence(answers))
    adaptive = await majority_vote(model, n=16, stopping="adaptive").ainvoke("Q")
    assert adaptive.settings["sampled"] == 8  # 3 to 1 is 0.81; 7 to 1 is 0.98
    assert adaptive.answer == r"\boxed{7}"


async def test_stopping_is_a_setting_of_each_invocation(model_for):
    _, model = model_for(sequence([r"\boxed{7}"] * 8))
    node = majority_vote(model, n=8)
    assert (await node.ainvoke("Q")).settings["sampled"] == 8  # no stopping: all n
    result = await node.ainvoke("Q", stopping="adaptive", round_size=2)
    assert result.settings["sampled"] == 4  # min_votes (4) wait for the second round of 2
    result = await node.ainvoke("Q", stopping="supermajority", round_size=1)
    assert result.settings["sampled"] == 4 and result.settings["early_stop"] == 0.75


async def test_a_stricter_posterior_samples_more(model_for):
    _, model = model_for(sequence([r"\boxed{7}"] * 16))
    node = majority_vote(model, n=16, stopping="adaptive", posterior=0.99, round_size=2)
    assert (await node.ainvoke("Q")).settings["sampled"] == 6  # 1 - 0.5 ** 7 = 0.992


def test_bad_stopping_settings_are_clear_errors():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match="round_size"):
        majority_vote(model, n=4, stopping="adaptive")
    with pytest.raises(ConfigurationError, match="stopping"):
        majority_vote(model, stopping="sometimes")
    with pytest.raises(ConfigurationError, match="posterior"):
        majority_vote(model, stopping="adaptive", posterior=0.4)


def test_adaptive_stopping_from_the_command_line(loopback):
    from test_cli import ttc

    server = loopback(lambda request: "It is 12.", honour_n=True)
    args = ["--strategy", "majority_vote", "--stopping", "adaptive", "--answer", "number"]
    done = ttc("run", "Q", *args, "-n", "16", "--json", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["settings"]["stopping"] == "adaptive" and record["settings"]["sampled"] == 4
    assert len(server.requests) == 1
