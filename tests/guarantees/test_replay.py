"""What a checkpointed task billed is recorded with its result, and charged again when a resumed
run replays the result (the end-to-end kill-and-resume tests are in test_resume.py)."""

from __future__ import annotations

import pytest

from ttc_agent import bills
from ttc_agent.budget import Budget, BudgetExhausted, Meter, Price, metered
from ttc_agent.strategies import _replay as replay
from ttc_agent.types import Usage


def test_a_settled_call_is_billed_to_every_recording_around_it():
    meter = Meter(Budget(calls=5))
    with bills.recording() as outer:
        with bills.recording() as inner:
            ticket = meter.reserve("m", prompt_tokens=10, output_tokens=4)
            meter.settle(ticket, "m", Usage(prompt_tokens=7, completion_tokens=3, calls=1))
        ticket = meter.reserve("m", prompt_tokens=10, output_tokens=4)
        meter.settle(ticket, "m", None)  # a timeout: charged its reservation
    assert inner == [("m", 7, 3)]
    assert outer == [("m", 7, 3), ("m", 10, 4)]


async def test_a_replayed_result_charges_the_budget_once():
    price = Price(input=1.0, output=2.0)
    budget = Budget(calls=3, cost=1.0, prices={"m": price})
    with metered(budget) as meter, replay.new_run():

        async def two_calls() -> str:
            for _ in range(2):
                ticket = meter.reserve("m", prompt_tokens=100, output_tokens=50)
                meter.settle(ticket, "m", Usage(prompt_tokens=90, completion_tokens=40, calls=1))
            return "done"

        result, record = await replay.recorded(two_calls())
        assert result == "done" and record["bills"] == [["m", 90, 40]] * 2
        assert replay.replayed(record) is False  # made in this run: charged as it was made
        assert meter.spent.calls == 2

    with metered(budget) as resumed, replay.new_run(), bills.recording() as around:
        assert replay.replayed(record) is True  # stored by the run that was interrupted
        assert resumed.spent.calls == 2
        assert resumed.spent.cost == pytest.approx(2 * price.cost(90, 40))
        assert around == [("m", 90, 40)] * 2  # an enclosing task records the replay too
        resumed.reserve("m", prompt_tokens=10, output_tokens=10)
        with pytest.raises(BudgetExhausted, match="calls"):
            resumed.reserve("m", prompt_tokens=10, output_tokens=10)
