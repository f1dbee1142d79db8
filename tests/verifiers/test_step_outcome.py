"""StepsAsOutcome: a step verifier scoring whole candidates (the steps' scores aggregated),
for best-of-N."""

from __future__ import annotations

from test_step_search import NumberVerifier


async def test_step_verifier_as_outcome_verifier_for_best_of_n(model_for):
    from ttc_agent import StepsAsOutcome, best_of_n

    answers = iter(["s1.1\n\ns2.9", "s1.5\n\ns2.2", "s1.8"])
    _, model = model_for(lambda request: next(answers), honour_n=True)
    verifier = NumberVerifier()
    node = best_of_n(model, StepsAsOutcome(verifier, aggregate="min"), n=3)
    result = await node.ainvoke("Q")
    assert [c.score.value for c in result.candidates] == [0.1, 0.2, 0.8]
    assert result.answer == "s1.8"
    assert verifier.batches == [[["s1.1", "s2.9"], ["s1.5", "s2.2"], ["s1.8"]]]


async def test_whole_solutions_as_one_step(model_for):
    from ttc_agent import StepsAsOutcome

    verifier = NumberVerifier()
    scores = await StepsAsOutcome(verifier, delimiter=None).score(
        [{"role": "user", "content": "Q"}], ["s1.3\n\ns2.7", "s1.4"]
    )
    assert verifier.batches == [[["s1.3\n\ns2.7"], ["s1.4"]]]  # one step each: one verdict
    assert [s.value for s in scores] == [0.3, 0.4]
