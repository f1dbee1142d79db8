"""Bad input: each gets one clear error that names the problem, and leaves nothing on disk.

The judge-card cases are in test_judge.py (no criteria, weights, anchors, scale, TOML); here are
the rest, through the public API and through the ``ttc`` command with ``--out``.
"""

from __future__ import annotations

import pytest
from test_cli import HELPFULNESS, script, ttc

from ttc_agent import (
    AuthenticationFailed,
    ConfigurationError,
    EndpointUnreachable,
    JudgeCardError,
    OpenAIChat,
    RetryPolicy,
    RubricJudge,
    ab_mcts,
    beam_search,
    best_of_n,
    dvts,
    majority_vote,
    particle_filter,
    refine,
)
from ttc_agent.testing import LoopbackServer

MODEL = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
JUDGE = RubricJudge("helpfulness", MODEL)


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: best_of_n(MODEL, JUDGE, n=0), "best_of_n: n: Input should be greater than"),
        (lambda: majority_vote(MODEL, n=-1), "majority_vote: n: Input should be greater than"),
        (
            lambda: beam_search(MODEL, JUDGE, n=6, keep=4),
            "beam_search: n per tree (6) must be a multiple of keep (4)",
        ),
        (
            lambda: dvts(MODEL, JUDGE, n=6, subtrees=4),
            "dvts: n (6) must be a multiple of subtrees (4)",
        ),
        (lambda: refine(MODEL, JUDGE, rounds=-1), "refine: rounds: Input should be greater"),
        (
            lambda: particle_filter(MODEL, JUDGE, ess_threshold=2),
            "particle_filter: ess_threshold: Input should be less than or equal to 1",
        ),
        (lambda: ab_mcts(MODEL, JUDGE, batch=0), "ab_mcts: batch: Input should be greater than"),
        (lambda: RubricJudge("no_such_card", MODEL), "unknown judge card 'no_such_card'"),
        (lambda: best_of_n(MODEL, JUDGE, budget={"calls": -1}), "budget: calls"),
    ],
    ids=["n<1", "negative-n", "keep", "subtrees", "rounds", "ess", "batch", "judge", "budget"],
)
def test_bad_arguments_name_the_problem(build, problem):
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert problem in str(caught.value)


def test_unknown_judge_card_is_a_card_error():
    with pytest.raises(JudgeCardError, match="available:"):
        RubricJudge("no_such_card", MODEL)


async def test_unreachable_endpoint_and_wrong_key_name_the_problem():
    async with OpenAIChat(
        "m", base_url="http://127.0.0.1:9/v1", api_key="sk-secret", retry=RetryPolicy(1)
    ) as model:
        with pytest.raises(EndpointUnreachable, match=r"127\.0\.0\.1:9/v1 is unreachable"):
            await model.sample([{"role": "user", "content": "Hi"}])
    with LoopbackServer(api_key="right-key") as server:
        async with OpenAIChat("m", base_url=server.base_url, api_key="sk-wrong") as model:
            with pytest.raises(AuthenticationFailed, match="refused the API key") as caught:
                await model.sample([{"role": "user", "content": "Hi"}])
    assert "sk-wrong" not in str(caught.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "n: Input should be greater than or equal to 1"),
        (
            ["--strategy", "beam_search", "-n", "6", "--keep", "4"],
            "beam_search: n per tree (6) must be a multiple of keep (4)",
        ),
        (["--strategy", "magic"], "unknown strategy 'magic'"),
        (["--judge", "nope"], "unknown judge card 'nope'"),
    ],
)
def test_failed_runs_leave_no_result_file(loopback, tmp_path, args, message):
    server = loopback(script(HELPFULNESS))
    out = tmp_path / "result.json"
    done = ttc("run", "Q", *args, "--out", str(out), server=server)
    assert done.returncode == 2
    assert message in done.stderr
    assert list(tmp_path.iterdir()) == []  # no result, no temporary file


def test_unreachable_endpoint_leaves_no_result_file(tmp_path):
    out = tmp_path / "result.json"
    done = ttc(
        "run",
        "Q",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--retries",
        "1",
        "--out",
        str(out),
    )
    assert done.returncode == 1
    assert "unreachable" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_finished_run_writes_the_whole_record(loopback, tmp_path):
    import json

    server = loopback(script(HELPFULNESS), honour_n=True)
    out = tmp_path / "result.json"
    done = ttc("run", "Q", "-n", "3", "--out", str(out), server=server)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["chosen"] == 1
    assert list(tmp_path.iterdir()) == [out]
