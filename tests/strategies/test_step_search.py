"""beam_search against the loopback server (steps continue the assistant's text), and the
scripts and step verifiers the step-search tests share."""

from __future__ import annotations

import re
import threading

import pytest

from ttc_agent import ConfigurationError, OpenAIChat
from ttc_agent.strategies.beam_search import beam_search
from ttc_agent.strategies.dvts import dvts
from ttc_agent.testing import fenced
from ttc_agent.types import StepScores, Usage


class Stepper:
    """Step k of a solution is "s<k>.<request number>"; the tail after the delimiter is cut."""

    def __init__(self, final_at: dict[int, int] | None = None) -> None:
        self.count, self.lock = 0, threading.Lock()
        self.final_at = final_at or {}  # request number -> final step

    def __call__(self, request):
        with self.lock:
            self.count += 1
            number = self.count
        depth = (request.prefix or "").count("\n\n") + 1
        if number in self.final_at:
            return f"s{depth}.{number} so the answer is \\boxed{{{self.final_at[number]}}}"
        return f"s{depth}.{number}\n\nnot part of this step"


class NumberVerifier:
    """A deterministic step verifier: a step "s<k>.<m>" scores (m % 10) / 10."""

    name = "number"

    def __init__(self) -> None:
        self.batches: list[list[list[str]]] = []

    async def score_steps(self, prompt, solutions):
        self.batches.append([list(s) for s in solutions])
        return [
            StepScores(
                steps=[_value(step) for step in steps], usage=Usage(prompt_tokens=1, calls=1)
            )
            for steps in solutions
        ]


def _value(step: str) -> float:
    return int(re.match(r"s\d+\.(\d+)", step).group(1)) % 10 / 10


def generation(server):
    return [r for r in server.requests if fenced(r.last_user) is None]


async def test_beam_bookkeeping(model_for):
    server, model = model_for(Stepper(), honour_n=True)
    verifier = NumberVerifier()
    node = beam_search(model, verifier, n=4, keep=2, max_steps=3)
    result = await node.ainvoke("Solve it.")
    requests = generation(server)
    # step 1: one request for n=4 from the root; steps 2 and 3: one request per survivor, n=2
    assert [r.body.get("n", 1) for r in requests] == [4, 2, 2, 2, 2]
    assert requests[0].prefix is None
    assert [len(batch) for batch in verifier.batches] == [4, 4, 4]
    assert [s[0] for s in verifier.batches[0]] == ["s1.1", "s1.2", "s1.3", "s1.4"]
    # the two best (s1.4, s1.3) survive, each expanded n // keep = 2 times from its own text
    assert {r.prefix for r in requests[1:3]} == {"s1.4\n\n", "s1.3\n\n"}
    assert sorted(s[0] for s in verifier.batches[1]) == ["s1.3", "s1.3", "s1.4", "s1.4"]
    assert all(len(s) == 3 for s in verifier.batches[2])
    # max_steps reached with nothing finished: the live beams are the candidates
    assert len(result.candidates) == 4
    assert {c.finish_reason for c in result.candidates} == {"max_steps"}
    assert all(len(c.step_scores) == 3 for c in result.candidates)
    assert result.settings["steps"] == [3]


async def test_keep_best_and_finished_set_aside(model_for):
    # requests 1-4 give step 1 (n ignored); request 3 finishes at once with answer 7
    server, model = model_for(Stepper(final_at={3: 7}), honour_n=False)
    verifier = NumberVerifier()
    result = await beam_search(model, verifier, n=4, keep=2, max_steps=2).ainvoke("Q")
    requests = generation(server)
    # step 2 expands the two best live beams: s1.4 (0.4) and s1.2 (0.2), twice each
    assert sorted(r.prefix for r in requests[4:]) == ["s1.2\n\n"] * 2 + ["s1.4\n\n"] * 2
    finished = [c for c in result.candidates if c.finish_reason == "stop"]
    assert [c.text for c in finished] == ["s1.3 so the answer is \\boxed{7}"]
    assert len(result.candidates) == 1  # finished solutions exist: unfinished ones are dropped
    assert result.answer.endswith("\\boxed{7}")
    assert result.usage.generation.calls == 8
    assert result.usage.verification.calls == 8


async def test_stop_when_n_solutions_have_finished(model_for):
    server, model = model_for(Stepper(final_at={1: 1, 2: 2, 3: 3, 4: 4}), honour_n=False)
    result = await beam_search(model, NumberVerifier(), n=4, keep=2, max_steps=10).ainvoke("Q")
    assert len(generation(server)) == 4
    assert result.answer.endswith("\\boxed{4}")  # the best score: s1.4 -> 0.4


@pytest.mark.parametrize(
    ("aggregate", "expected"), [("last", 0.2), ("min", 0.1), ("prod", 0.02), ("mean", 0.15)]
)
def test_aggregates(aggregate, expected):
    from ttc_agent.types import aggregate_scores

    assert aggregate_scores([0.1, 0.2], aggregate) == pytest.approx(expected)


async def test_weighted_by_answer(model_for):
    finals = {1: 5, 2: 7, 3: 7, 4: 5}
    _, model = model_for(Stepper(final_at=finals), honour_n=False)

    class Fixed:
        name = "fixed"

        async def score_steps(self, prompt, solutions):
            table = {"s1.1": 0.9, "s1.2": 0.5, "s1.3": 0.5, "s1.4": 0.1}
            return [StepScores(steps=[table[s[0].split()[0]]]) for s in solutions]

    def boxed(text):
        match = re.search(r"\\boxed\{(\d+)\}", text)
        return match.group(1) if match else None

    result = await beam_search(model, Fixed(), n=4, keep=2, answer_key=boxed).ainvoke("Q")
    assert result.group_scores == {"5": pytest.approx(1.0), "7": pytest.approx(1.0)}
    _, model = model_for(Stepper(final_at={1: 5, 2: 7, 3: 7, 4: 6}), honour_n=False)
    result = await beam_search(model, Fixed(), n=4, keep=2, answer_key=boxed).ainvoke("Q")
    assert result.answer.endswith("{7}")  # 0.5 + 0.5 beats the single best 0.9
    assert result.group_scores["7"] == pytest.approx(1.0)


async def test_lookahead_scores_rollouts_but_keeps_one_step(model_for):
    server, model = model_for(Stepper(), honour_n=False)
    verifier = NumberVerifier()
    result = await beam_search(model, verifier, n=2, keep=1, max_steps=2, lookahead=1).ainvoke("Q")
    greedy = [r for r in generation(server) if r.body["temperature"] == 0.0]
    assert len(greedy) == 4  # one lookahead step per live beam per step
    assert all(len(s) == 2 for s in verifier.batches[0])  # scored with the rollout
    assert all(len(c.step_scores) == 2 for c in result.candidates)  # but kept two own steps


def test_n_must_be_a_multiple_of_keep():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match=r"multiple of keep \(3\)"):
        beam_search(model, NumberVerifier(), n=16, keep=3)
    with pytest.raises(ConfigurationError, match=r"multiple of subtrees \(3\)"):
        dvts(model, NumberVerifier(), n=16, subtrees=3)


def _log(p: float) -> float:
    import math

    return math.log(p)


class FinishedLow:
    """Finished steps (a boxed answer) score 0.1, every other step 0.9."""

    name = "finished_low"

    async def score_steps(self, prompt, solutions):
        return [
            StepScores(steps=[0.1 if "boxed" in step else 0.9 for step in steps])
            for steps in solutions
        ]


async def test_beam_search_refills_to_n_when_fewer_than_keep_beams_live(model_for):
    # step 1: seven of the eight samples finish, so one beam is left alive for step 2
    server, model = model_for(Stepper(final_at=dict.fromkeys(range(1, 8), 1)), honour_n=False)
    result = await beam_search(model, FinishedLow(), n=8, keep=2, max_steps=2).ainvoke("Q")
    step_two = [r for r in generation(server) if r.prefix is not None]
    assert len(step_two) == 8  # search-and-learn samples n again from the survivor
    assert {r.prefix for r in step_two} == {"s1.8\n\n"}
    assert len(result.candidates) == 7


SOLUTION = "Multiply 5 by 6 to get 30.\n\nThe answer is 30."


async def test_a_step_cut_at_max_step_tokens_is_continued_not_ended(model_for):
    """The server cuts each reply at 6 tokens: the step goes on from where it was cut."""

    def handler(request):
        prefix = request.prefix or ""
        return SOLUTION[len(prefix) :] if SOLUTION.startswith(prefix) else "lost\n\n"

    server, model = model_for(handler, honour_n=False)
    node = beam_search(model, FinishedLow(), n=1, keep=1, max_steps=12, max_step_tokens=6)
    result = await node.ainvoke("Q")
    prefixes = [r.prefix or "" for r in generation(server)]
    assert all(SOLUTION.startswith(p) for p in prefixes), prefixes  # no delimiter mid-sentence
    assert "Multiply 5 by " in prefixes
    assert result.answer == SOLUTION
    assert result.candidates[0].finish_reason == "stop"
    assert len(result.candidates[0].step_scores) == 2  # two steps, however many requests
