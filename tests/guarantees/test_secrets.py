"""API keys never appear in logs, results, reprs, tracebacks or error messages."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from ttc_agent import AuthenticationFailed, OpenAIChat, RubricJudge, best_of_n
from ttc_agent.testing import Fault, fenced, judge_reply

SECRET = "sk-test-5ecret-DO-NOT-LEAK-0123456789"
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def echoing_401(request):
    """A server that quotes the key it was sent, as some do in their error messages."""
    sent = request.headers.get("authorization", "").removeprefix("Bearer ")
    return Fault(401, f"Incorrect API key provided: {sent}")


async def test_results_reprs_and_logs_hold_no_key(loopback, caplog):
    def handler(request):
        if fenced(request.last_user) is not None:
            return judge_reply(dict.fromkeys(CRITERIA, 3))
        return "An answer."

    server = loopback(handler)
    caplog.set_level(logging.DEBUG)
    async with OpenAIChat("m", base_url=server.base_url, api_key=SECRET) as model:
        result = await best_of_n(model, RubricJudge("helpfulness", model), n=2).ainvoke("Q")
        texts = [repr(model), repr(model.endpoint), str(model.__dict__), result.model_dump_json()]
    assert all(SECRET not in text for text in texts)
    assert caplog.records and SECRET not in caplog.text
    assert all(SECRET in r.headers.get("authorization", "") for r in server.requests)  # it was sent


async def test_errors_and_tracebacks_hold_no_key(loopback):
    server = loopback(echoing_401)
    async with OpenAIChat("m", base_url=server.base_url, api_key=SECRET) as model:
        with pytest.raises(AuthenticationFailed) as caught:
            await model.sample([{"role": "user", "content": "Hi"}])
    message = str(caught.value)
    assert "***" in message and SECRET not in message
    assert SECRET not in "".join(traceback.format_exception(caught.value))


def test_the_command_line_prints_no_key(loopback):
    server = loopback(echoing_401)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    env |= {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": SECRET, "TTC_MODEL": "m"}
    done = subprocess.run(
        [sys.executable, "-m", "ttc_agent.cli", "run", "Q", "-n", "2", "--retries", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 1
    assert "refused the API key (401)" in done.stderr
    assert SECRET not in done.stderr + done.stdout
