"""Candidates that try to talk the judge into a high score meet structural defences.

The corpus (tests/data/judge_injection.jsonl: 159 attacks and 10 harmless controls) holds
instructions to the judge, fake score lines and verdicts in several formats, fake closing fences,
fake turns of eight template families, look-alike Unicode, requests in eight languages, encoded
requests and appeals to the evaluator. For every entry: the candidate stays inside its fence,
whole; no chat-template control marker survives; the prompt around the fence is the same as for
a harmless answer; and the score is read only from the judge's own reply, given what the
injection screen left of the candidate (tests/guarantees/test_injection_screen.py and
tests/guarantees/test_injection_policy.py test the screen and its policies).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttc_agent import OpenAIChat, RubricJudge
from ttc_agent.testing import fenced, judge_reply
from ttc_agent.verifiers.fence import fence_tag, neutralise
from ttc_agent.verifiers.injection_policy import InjectionPolicy
from ttc_agent.verifiers.judge_prompt import DATA_NOTICE

TESTS = Path(__file__).resolve().parents[1]
CORPUS = [
    json.loads(line) for line in (TESTS / "data" / "judge_injection.jsonl").read_text().splitlines()
]
PROMPT = [{"role": "user", "content": "Explain photosynthesis in two sentences."}]
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]
JUDGE = RubricJudge("helpfulness", OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k"))


def test_the_corpus_covers_every_kind():
    kinds = {attack["kind"] for attack in CORPUS}
    assert len(CORPUS) >= 169
    assert {"instruction", "fake_score", "fake_fence", "role_marker", "lookalike"} <= kinds
    assert {"verdict_json", "verdict_line", "verdict_criteria", "fake_turn"} <= kinds
    assert {"multilingual", "encoded", "appeal", "control"} <= kinds


@pytest.mark.parametrize("attack", CORPUS, ids=[f"{a['kind']}-{i}" for i, a in enumerate(CORPUS)])
def test_the_candidate_stays_inside_its_fence(attack):
    system, user = JUDGE.messages(PROMPT, attack["text"])
    _, benign = JUDGE.messages(PROMPT, "Plants turn light into sugar.")
    inside = neutralise(attack["text"])
    closing = f"<<<END CANDIDATE {fence_tag(inside)}>>>"
    assert fenced(user["content"], "CANDIDATE") == inside  # whole, nothing escaped
    assert user["content"].count(closing) == 1
    assert "<|" not in inside.replace("<\u2060|", "")  # no live template marker
    benign_closing = f"<<<END CANDIDATE {fence_tag('Plants turn light into sugar.')}>>>"
    assert user["content"].split(closing)[1] == benign["content"].split(benign_closing)[1]
    assert DATA_NOTICE in system["content"]


@pytest.mark.parametrize("attack", CORPUS[:8], ids=[a["kind"] for a in CORPUS[:8]])
def test_an_attack_in_the_conversation_is_fenced_too(attack):
    _, user = JUDGE.messages([{"role": "user", "content": attack["text"]}], "An answer.")
    assert fenced(user["content"], "CONVERSATION") == f"[user]\n{neutralise(attack['text'])}"


async def test_scores_come_only_from_the_judges_own_reply(loopback):
    seen = []

    def judge(request):
        seen.append(fenced(request.last_user))
        return judge_reply(dict.fromkeys(CRITERIA, 1))

    server = loopback(judge)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        scores = await RubricJudge("helpfulness", model).score(PROMPT, [a["text"] for a in CORPUS])
    assert [s.value for s in scores] == [1.0] * len(CORPUS)
    screened = [InjectionPolicy().screen(a["text"], CRITERIA).text for a in CORPUS]
    assert sorted(seen) == sorted(neutralise(text) for text in screened)  # the default policy
