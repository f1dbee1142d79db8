"""deepconf against the loopback server: offline, the confident share votes, weighted by
confidence; online, a warm-up sets the threshold, the other traces stream with their logprobs
and a low-confidence stream is cancelled (the server sees it closed early), and the vote stops
sampling once it is settled."""

from __future__ import annotations

import json
import math

import pytest
from test_cli import ttc, ttc_eval
from test_streaming import closed

from ttc_agent import ConfigurationError, OpenAIChat, RetryPolicy, SearchError, deepconf
from ttc_agent.answers import last_number
from ttc_agent.strategies.registry import strategy
from ttc_agent.testing import confident_reply, count_tokens

SURE = (-math.log(0.99) - math.log(0.01)) / 2
UNSURE = math.log(2)
STEPS = " ".join(["step"] * 40)  # 79 tokens


def sure(answer: str, **kwargs):
    return confident_reply(f"{STEPS} so {answer}", **kwargs)


def shaky(answer: str):
    return confident_reply(f"{STEPS} so {answer}", doubtful=set(range(20, 200)))


def in_turn(*replies):
    """The replies in the order requests arrive (one choice each)."""
    state = {"i": 0}

    def handler(request):
        reply = replies[min(state["i"], len(replies) - 1)]
        state["i"] += 1
        return reply

    return handler


async def test_offline_the_confident_share_outvotes_a_shaky_majority(model_for):
    server, model = model_for(in_turn(shaky("7"), shaky("7"), shaky("7"), sure("9"), sure("9")))
    result = await deepconf(model, n=5, keep_share=0.4, answer=last_number).ainvoke("Q")
    assert result.answer.endswith("so 9") and result.selection == "weighted"
    assert [c.key for c in result.candidates] == ["7", "7", "7", "9", "9"]
    assert [c.score.normalized for c in result.candidates] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert result.group_scores == {"7": 0.0, "9": 2.0}
    assert result.settings["kept"] == 2 and result.settings["mode"] == "offline"
    # the 0.6 quantile of (U, U, U, S, S), interpolated as numpy does: U + 0.4 (S - U)
    threshold = UNSURE + 0.4 * (SURE - UNSURE)
    assert result.settings["threshold"] == pytest.approx(threshold, abs=1e-5)
    body = server.requests[0].body
    assert body["n"] == 5 and body["logprobs"] is True and body["top_logprobs"] == 20
    assert "below the threshold: no vote" in result.candidates[0].score.rationale


async def test_offline_weights_are_the_confidences(model_for):
    # all vote (keep_share=1): two sure 9s (about 2.3 each) outweigh three shaky 7s (about 1.1)
    _, model = model_for(in_turn(shaky("7"), shaky("7"), shaky("7"), sure("9"), sure("9")))
    result = await deepconf(model, n=5, keep_share=1.0, answer=last_number).ainvoke("Q")
    assert result.settings["kept"] == 5 and result.answer.endswith("so 9")
    shaky_weight = result.candidates[0].confidence.lowest_group
    assert shaky_weight == pytest.approx(UNSURE, abs=1e-5)
    assert result.group_scores["7"] == pytest.approx(3 * UNSURE / SURE, abs=1e-5)


async def test_offline_can_rank_by_another_signal(model_for):
    # the shaky middle does not show in the tail: by tail confidence the 7s are as sure
    replies = [confident_reply(f"{STEPS} so 7", doubtful=set(range(10, 30)))] * 3
    _, model = model_for(in_turn(*replies, sure("9"), sure("9")))
    node = deepconf(model, n=5, keep_share=1.0, answer=last_number, signal="tail", tail=8)
    assert (await node.ainvoke("Q")).answer.endswith("so 7")
    assert (await node.ainvoke("Q", signal="lowest_group")).answer.endswith("so 9")


async def test_a_model_without_logprobs_is_one_clear_error_before_any_request(loopback):
    server = loopback(lambda request: sure("9"))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", logprobs=False) as model:
        with pytest.raises(ConfigurationError, match=r"reads token logprobs.*logprobs=False"):
            await deepconf(model, n=2, answer=last_number).ainvoke("Q")
    assert server.requests == []


class NoLogprobs:
    """A server that ignores logprobs, as seen by the client: completions without them."""

    def __init__(self, model):
        self.model, self.name = model, model.name

    async def sample(self, messages, n=1, **options):
        return [
            c.model_copy(update={"logprobs": None})
            for c in await self.model.sample(messages, n, **options)
        ]

    async def check_continuation(self):
        return None

    async def aclose(self):
        await self.model.aclose()


async def test_completions_without_logprobs_are_one_clear_error_keeping_them(model_for):
    _, model = model_for(lambda request: sure("9"))
    with pytest.raises(SearchError, match=r"2 of 2 completions .* came without them") as caught:
        await deepconf(NoLogprobs(model), n=2, answer=last_number).ainvoke("Q")
    assert len(caught.value.partial.candidates) == 2
    assert caught.value.partial.usage.generation.calls == 1
    assert isinstance(caught.value.__cause__, ConfigurationError)


async def test_online_cancels_a_low_confidence_stream_and_counts_the_tokens_saved(model_for):
    # the warm-up is a little unsure at one token (0.6), so its threshold sits just below a
    # sure trace's windows; a shaky stream falls below it at its first unsure token (the 21st)
    warm = sure("9", doubtful={5}, unsure=0.6)
    streams = {"shaky": shaky("9"), "sure": sure("9")}
    kinds = iter(["shaky", "sure"])

    def handler(request):
        return streams[next(kinds)] if request.body.get("stream") else warm

    server, model = model_for(handler, token_latency=0.003)
    node = deepconf(model, n=4, mode="online", warmup=2, round_size=2, stopping=None, window=8)
    result = await node.ainvoke("Q")
    record = result.settings
    threshold = (7 * SURE + (-math.log(0.6) - math.log(0.4)) / 2) / 8
    assert record["threshold"] == pytest.approx(threshold, abs=1e-5)
    [cancelled] = [c for c in result.candidates if c.finish_reason == "cancelled"]
    assert cancelled.usage.completion_tokens == 21 and cancelled.key is None
    assert cancelled.score.normalized == 0.0
    seen = [closed(server, r.index, timeout=1) for r in server.requests if r.body.get("stream")]
    assert [r.closed_early for r in seen].count(True) == 1  # the server saw it closed early
    length = count_tokens(f"{STEPS} so 9")  # 82: every finished trace
    assert record["cancelled"] == 1 and record["sampled"] == 4
    assert record["saved_by_cancelling"] == length - 21 == record["tokens_saved"]
    assert [r.body.get("stream", False) for r in server.requests] == [False, True, True]
    assert result.answer.endswith("so 9") and result.settings["kept"] == 3


async def test_online_stops_sampling_once_the_weighted_vote_is_settled(model_for):
    server, model = model_for(lambda request: sure("9"))
    result = await deepconf(model, n=16, mode="online", warmup=4, answer=last_number).ainvoke("Q")
    # four equally sure votes for 9: P(9 is the majority) = 1 - 0.5 ** 5 = 0.969 > 0.95
    assert result.settings["sampled"] == 4 and len(server.requests) == 1
    assert result.settings["tokens_saved"] == 12 * count_tokens(f"{STEPS} so 9")
    assert result.settings["saved_by_stopping"] == result.settings["tokens_saved"]


async def test_online_streams_until_the_vote_settles(model_for):
    replies = in_turn(sure("9"), sure("7"), sure("9"), sure("9"), sure("9"), sure("9"))
    server, model = model_for(replies, honour_n=False)  # a llama.cpp server: one choice each
    node = deepconf(model, n=12, mode="online", warmup=2, round_size=2, answer=last_number)
    result = await node.ainvoke("Q")
    # 9 v 7 after the warm-up, 3 v 1, then 5 v 1 (0.94)... 6 v 1: 0.965 at 8 samples
    assert result.settings["sampled"] == 8 and result.answer.endswith("so 9")
    assert sum(1 for r in server.requests if r.body.get("stream")) == 6


class Unstreamable(NoLogprobs):
    async def sample(self, messages, n=1, **options):
        return await self.model.sample(messages, n, **options)


async def test_online_needs_a_model_that_streams(model_for):
    server, model = model_for(lambda request: sure("9"))
    with pytest.raises(ConfigurationError, match=r"online streams its traces.*mode='offline'"):
        await deepconf(Unstreamable(model), n=8, mode="online").ainvoke("Q")
    assert server.requests == []


async def test_online_keeps_to_the_budget(model_for):
    server, model = model_for(lambda request: sure("9", doubtful={50}), token_latency=0.001)
    node = deepconf(model, n=8, mode="online", warmup=2, round_size=2, stopping=None)
    result = await node.ainvoke("Q", budget={"calls": 3})
    assert len(server.requests) == 3 and result.budget_limited
    assert result.usage.generation.calls == 3


def test_bad_settings_are_clear_errors():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match=r"warmup \(4\) must be below n \(4\)"):
        deepconf(model, n=4, mode="online")
    with pytest.raises(ConfigurationError, match="keep_share"):
        deepconf(model, keep_share=0)
    with pytest.raises(ConfigurationError, match="signal must be lowest_group"):
        deepconf(model, mode="online", signal="tail")
    assert strategy("deepconf").needs == frozenset({"equivalence"})


def test_ttc_run_json_records_each_candidates_confidence(loopback):
    server = loopback(lambda request: confident_reply("It is 7.", doubtful={4}), honour_n=True)
    done = ttc("run", "Q", "--strategy", "deepconf", "-n", "3", "--json", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    signals = [c["confidence"] for c in record["candidates"]]
    assert all(s is not None and s["tokens"] == 6 for s in signals)
    assert signals[0]["window"] == 6  # shorter than the default window: one group
    assert signals[0]["lowest_group"] == signals[0]["mean"] == signals[0]["tail"]
    assert signals[0]["mean"] == pytest.approx((5 * SURE + UNSURE) / 6, abs=1e-6)
    assert {"self_certainty"} <= set(signals[0])
    assert record["strategy"] == "deepconf" and record["selection"] == "weighted"


def test_ttc_run_deepconf_online_with_its_options(loopback):
    server = loopback(lambda request: sure("9"), honour_n=True)
    args = ["--strategy", "deepconf", "--mode", "online", "--keep-share", "0.1", "--answer"]
    done = ttc("run", "Q", *args, "number", "-n", "8", "--json", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["settings"]["mode"] == "online" and record["settings"]["keep_share"] == 0.1
    assert record["settings"]["sampled"] == 4  # settled after the warm-up


def test_ttc_eval_measures_deepconf_offline_and_online_beside_the_other_methods(loopback, tmp_path):
    questions = {"What is 3 + 4?": "7", "What is 2 + 7?": "9"}
    data, out = tmp_path / "questions.jsonl", tmp_path / "run"
    data.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in questions.items()))

    def world(request):
        gold = questions[request.last_user.split("\n")[0]]
        return confident_reply(f"{STEPS} so the answer is \\boxed{{{gold}}}.")

    server = loopback(world, honour_n=True)
    args = ["-n", "4", "--no-judge"]
    args += ["--search", "deepconf", "--search", "deepconf_online", "--out", str(out)]
    done = ttc_eval(data, *args, server=server)
    assert done.returncode == 0, done.stderr
    points = json.loads((out / "summary.json").read_text())["points"]
    measured = {(p["method"], p["n"]): p["accuracy"] for p in points}
    for method in ("deepconf", "deepconf_online", "majority"):
        assert [measured[(method, k)] for k in (1, 2, 4)] == [1.0, 1.0, 1.0]
    streamed = [r for r in server.requests if r.body.get("stream")]
    # online at n=2 (a warm-up of 1, one streamed) and n=4 (3 agree: 0.94, one streamed)
    assert len(streamed) == 2 * (1 + 1)
    assert all(r.body["logprobs"] for r in server.requests if r.body.get("top_logprobs"))
    assert "deepconf_online" in done.stdout


async def test_a_stream_lost_for_good_is_counted_and_the_rounds_go_on(loopback):
    """A round that lost a stream used to end the sampling, as if the budget had run out."""
    from ttc_agent.testing import Fault

    lost = {"first": True}

    def handler(request):
        if request.body.get("stream") and lost.pop("first", False):
            return Fault.server_error(500)
        return sure("9")

    server = loopback(handler)
    retry = RetryPolicy(attempts=1)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=retry) as model:
        node = deepconf(model, n=6, mode="online", warmup=2, round_size=2, stopping=None)
        result = await node.ainvoke("Q")
    assert result.failed == 1 and result.settings["sampled"] == 5
    assert sum(1 for r in server.requests if r.body.get("stream")) == 4  # n asked for in all
    assert result.settings["saved_by_stopping"] == 0


def test_the_evaluations_models_keep_openai_chats_logprobs_default():
    """model_from passed logprobs=None, which OpenAIChat now keeps as None (its default is
    True, the embedded server included): the eval's models asked for no logprobs at all."""
    from ttc_agent.evaluation.command import model_from

    retry = RetryPolicy(attempts=1)
    assert model_from(None, "http://127.0.0.1:9/v1", None, retry).logprobs is True
    assert model_from(None, "http://127.0.0.1:9/v1", None, retry, logprobs=False).logprobs is False
