"""Tournament selection for best-of-N: knockout rounds under the debiased pairwise judge, byes,
ties to the higher pointwise score else the earlier candidate, the bracket in the result, and a
hybrid (the pointwise best few, then the tournament), from Python and the command line."""

from __future__ import annotations

import json
import math
import re

import pytest

from ttc_agent import Budget, ConfigurationError, PairwiseJudge, RubricJudge, best_of_n
from ttc_agent.testing import Reply, fenced, judge_reply

WRITING = ["clarity", "style", "engagement", "relevance"]


def quality(text: str) -> int:
    found = re.search(r"quality (\d)", text or "")
    return int(found.group(1)) if found else 0


def world(qualities, prefer=lambda a, b: 0.9 if quality(a) > quality(b) else 0.1):
    """Drafts of these qualities; the rubric judge scores the quality; the pairwise judge
    reasons, then puts ``prefer(A, B)`` on A at its verdict token (the rest on B)."""

    def handler(request):
        text = request.prompt or request.last_user
        first, second = fenced(text, "RESPONSE A"), fenced(text, "RESPONSE B")
        if first is not None:
            if request.prefix is None:
                return "I compared them.\n\nVerdict: A"
            p_a = prefer(first, second)
            return Reply("A", alternatives={0: {"A": math.log(p_a), "B": math.log(1 - p_a)}})
        candidate = fenced(text)
        if candidate is not None:
            return judge_reply(dict.fromkeys(WRITING, max(1, min(5, quality(candidate)))))
        return f"Draft {request.choice} of quality {qualities[request.choice]}."

    return handler


def node(model, n, **options):
    judge = RubricJudge("writing_quality", model, mode="structured")
    return best_of_n(model, judge, n, pairwise=PairwiseJudge("writing_quality", model), **options)


def pairwise_requests(server):
    return [r for r in server.requests if fenced(r.prompt or r.last_user, "RESPONSE A")]


async def test_a_knockout_of_four_takes_three_matches_each_in_both_orders(model_for):
    server, model = model_for(world([2, 5, 3, 4]))
    result = await node(model, 4, selection="tournament").ainvoke("Write.")
    assert result.selection == "tournament" and result.chosen == 1
    bracket = [(m.round, m.first, m.second, m.winner, m.decided_by) for m in result.bracket]
    assert bracket == [(1, 0, 1, 1, "judge"), (1, 2, 3, 3, "judge"), (2, 1, 3, 1, "judge")]
    assert result.bracket[-1].preference == pytest.approx(0.9)
    asked = pairwise_requests(server)
    assert len(asked) == 3 * 2 * 2  # 3 matches, 2 orders, the reasoning and the verdict token
    shown = {
        (fenced(r.last_user, "RESPONSE A"), fenced(r.last_user, "RESPONSE B"))
        for r in asked
        if r.prefix is None
    }
    drafts = [c.text for c in result.candidates]
    for match in result.bracket:
        one, two = drafts[match.first], drafts[match.second]
        assert {(one, two), (two, one)} <= shown  # each match in both orders
    judged = sum(m.usage.calls for m in result.bracket) + 4  # and the 4 pointwise scores
    assert result.usage.verification.calls == judged


async def test_byes_for_odd_counts_and_ties_to_the_higher_pointwise_score(model_for):
    always_a = world([2, 5, 3], prefer=lambda a, b: 0.9)  # position-bound: every match a tie
    _, model = model_for(always_a)
    result = await node(model, 3, selection="tournament").ainvoke("Write.")
    bracket = [(m.round, m.first, m.second, m.winner, m.decided_by) for m in result.bracket]
    assert bracket == [(1, 0, 1, 1, "score"), (1, 2, None, 2, "bye"), (2, 1, 2, 1, "score")]
    assert [m.outcome for m in result.bracket] == ["tie", None, "tie"]
    assert result.chosen == 1


async def test_ties_without_a_score_to_break_them_go_to_the_earlier_candidate(model_for):
    _, model = model_for(world([4, 4, 4, 4], prefer=lambda a, b: 0.9))
    result = await node(model, 4, selection="tournament").ainvoke("Write.")
    assert result.chosen == 0 and {m.decided_by for m in result.bracket} == {"order"}


async def test_the_hybrid_lets_the_tournament_choose_among_the_pointwise_best(model_for):
    vivid = lambda a, b: 0.9 if "Draft 5" in a else 0.1 if "Draft 5" in b else 0.5  # noqa: E731
    server, model = model_for(world([2, 5, 3, 4, 1, 5], prefer=vivid))
    result = await node(model, 6, selection="hybrid", finalists=2).ainvoke("Write.")
    assert result.selection == "hybrid" and result.chosen == 5  # pointwise alone: 1
    assert [(m.first, m.second, m.winner) for m in result.bracket] == [(1, 5, 5)]
    assert len(pairwise_requests(server)) == 4  # one match, both orders
    assert result.settings["selection"] == "hybrid" and result.settings["finalists"] == 2


async def test_each_round_emits_progress(model_for):
    _, model = model_for(world([2, 5, 3, 4, 1]))
    events = [
        event
        async for event in node(model, 5, selection="tournament").graph.astream(
            {"messages": [("user", "Write.")]}, stream_mode="custom"
        )
        if event.get("ttc") == "compared"
    ]
    starts = [(e["round"], e["total"], e["rounds"]) for e in events if e["done"] == 0]
    assert starts == [(1, 2, 3), (2, 1, 3), (3, 1, 3)]  # 5: 2 matches and a bye, 1 and a bye, 1
    assert len(events) == 3 + 4  # the starts, and one event per match


async def test_matches_the_budget_leaves_unjudged_go_to_the_pointwise_scores(model_for):
    server, model = model_for(world([2, 5, 3, 4]))
    result = await node(model, 4, selection="tournament", budget=Budget(calls=5)).ainvoke("W.")
    assert result.budget_limited and result.chosen == 1
    assert {m.decided_by for m in result.bracket} == {"score"}
    assert pairwise_requests(server) == []


def test_a_tournament_needs_a_pairwise_judge(model_for):
    _, model = model_for(world([1]))
    judge = RubricJudge("writing_quality", model)
    with pytest.raises(ConfigurationError, match="selection 'tournament' needs a pairwise judge"):
        best_of_n(model, judge, 4, selection="tournament")
    with pytest.raises(ConfigurationError, match="selection"):
        best_of_n(model, judge, 4, selection="loudest")


async def test_an_override_to_a_tournament_without_a_pairwise_judge_is_refused(model_for):
    _, model = model_for(world([2, 5]))
    plain = best_of_n(model, RubricJudge("writing_quality", model, mode="structured"), 2)
    with pytest.raises(ConfigurationError, match="needs a pairwise judge"):
        await plain.ainvoke("Write.", selection="tournament")


def json_world(qualities):
    """The same drafts; a JSON pairwise judge (a server that cannot continue replies)."""

    def handler(request):
        first, second = (
            fenced(request.last_user, "RESPONSE A"),
            fenced(request.last_user, "RESPONSE B"),
        )
        if first is not None:
            winner = "A" if quality(first) > quality(second) else "B"
            return json.dumps({"reason": "r", "winner": winner})
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(WRITING, max(1, min(5, quality(candidate)))))
        return f"Draft {request.choice} of quality {qualities[request.choice]}."

    return handler


def test_ttc_run_selects_by_tournament(loopback):
    from test_cli import ttc

    server = loopback(json_world([2, 5, 3, 4]), honour_n=True)
    done = ttc(
        "run",
        "Write.",
        "-n",
        "4",
        "--judge",
        "writing_quality",
        "--selection",
        "tournament",
        "--json",
        server=server,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["selection"] == "tournament" and record["answer"] == "Draft 1 of quality 5."
    assert len(record["bracket"]) == 3
    done = ttc(
        "run",
        "Write.",
        "-n",
        "4",
        "--judge",
        "writing_quality",
        "--selection",
        "hybrid",
        "--finalists",
        "2",
        "--json",
        server=server,
    )
    assert done.returncode == 0, done.stderr
    assert [(m["first"], m["second"]) for m in json.loads(done.stdout)["bracket"]] == [(1, 3)]


async def test_ttc_writing_chooses_each_budget_by_tournament(loopback, tmp_path):
    from ttc_agent import OpenAIChat
    from ttc_agent.evaluation.writing import load_prompts, writing_experiment

    server = loopback(json_world([2, 5, 3, 4]))
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"prompt": f"Write {i}."}) + "\n" for i in range(2)))
    out = tmp_path / "w"
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        run = {
            "selection": RubricJudge("writing_quality", model, mode="structured"),
            "evaluation": PairwiseJudge("writing_quality", model),
            "tournament": PairwiseJudge("writing_quality", model),
            "n": 4,
            "out": out,
        }
        rates = await writing_experiment(load_prompts(prompts_file), model, **run)
        by = {r.n: r for r in rates}
        assert by[4].wins == 2 and by[2].wins == 2  # quality 5 beats the first draft's 2
        matches = [json.loads(line) for line in (out / "matches.jsonl").open()]
        # n=2's match (0 against 1) is n=4's first: 3 matches a prompt for every budget
        assert sorted((m["scope"], m["first"], m["second"]) for m in matches) == [
            (f"best_of_n/{p}", a, b) for p in ("0", "1") for a, b in ((0, 1), (1, 3), (2, 3))
        ]
        drafts = [json.loads(line) for line in (out / "candidates.jsonl").open()]
        sampled = sum(d["tokens"] + d["verification_tokens"] for d in drafts)
        judged = sum(m["usage"]["prompt_tokens"] + m["usage"]["completion_tokens"] for m in matches)
        assert by[4].tokens == (sampled + judged) / 2  # per prompt, the matches counted too
        assert (
            "drafts chosen by tournament under `writing_quality:pairwise`"
            in (out / "report.md").read_text()
        )
        requests = len(server.requests)
        again = await writing_experiment(load_prompts(prompts_file), model, **run)
        assert len(server.requests) == requests and again == rates

    from test_cli import ttc

    done = ttc(
        "writing",
        str(prompts_file),
        "-n",
        "2",
        "--selection",
        "tournament",
        "--out",
        str(tmp_path / "cli"),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli" / "matches.jsonl").is_file()
