"""The workshop text's own code passes the first tier of its exercise's checks (tests/text_answers.py).

Each answer is written as <side>/<part>/<exercise>.py in a temporary folder and checked there, as
`workshop check` checks a learner's file; only the first tier (the workshop's step) must pass."""

import pytest

from tests.text_answers import TEXT_ANSWERS, VALIDATION_BOUNDS, part1_validation
from workshop import cli as workshop


def check_answers(tmp_path, answers: dict[str, str]) -> dict[str, workshop.Outcome]:
    side = tmp_path / "text"
    for name, code in answers.items():
        (side / name).parent.mkdir(parents=True, exist_ok=True)
        (side / f"{name}.py").write_text(code)
    return workshop.run_checks([workshop.test_file(name) for name in answers], str(side))


def failures(outcome: workshop.Outcome) -> list[str]:
    return [f"{check.name}: {check.reason}" for check in outcome.tier(1) if not check.passed]


@pytest.mark.parametrize("name", [name for name in TEXT_ANSWERS if name.startswith("part1/")])
def test_the_texts_part1_code_does_the_step(tmp_path, name):
    outcome = check_answers(tmp_path, {name: TEXT_ANSWERS[name]})[name]
    assert outcome.tier(1) and outcome.passes(1), failures(outcome)


@pytest.mark.parametrize(("bill", "flipper"), VALIDATION_BOUNDS)
def test_any_sensible_maximum_does_exercise_3(tmp_path, bill, flipper):
    outcome = check_answers(tmp_path, {"part1/ex3_validation": part1_validation(bill, flipper)})["part1/ex3_validation"]
    assert outcome.passes(1), failures(outcome)


def test_the_texts_step_without_a_maximum_is_not_done(tmp_path):
    """`Query(gt=0)` alone is where the text starts exercise 3; "try adding a maximum" is the step."""
    code = part1_validation("", "").replace(", )", ")")
    outcome = check_answers(tmp_path, {"part1/ex3_validation": code})["part1/ex3_validation"]
    assert not outcome.passes(1)


@pytest.mark.slow
def test_the_texts_part2_code_does_each_step(tmp_path):
    """One pytest process for the four (Keras is imported once); each trains with the checks' small settings."""
    answers = {name: code for name, code in TEXT_ANSWERS.items() if name.startswith("part2/")}
    outcomes = check_answers(tmp_path, answers)
    problems = {
        name: failures(outcomes.get(name, workshop.Outcome())) or ["no check ran"]
        for name in answers
        if not outcomes.get(name, workshop.Outcome()).passes(1)
    }
    assert not problems, problems


@pytest.mark.slow
def test_the_texts_download_fails_at_once_saying_what_to_write(tmp_path):
    """Offline, the text's own `keras.datasets.mnist.load_data()` line fails the check at once (no wait on
    a download or a timeout), and the failure names the one line to change."""
    from app.datasets import _keras_mnist_cached

    if _keras_mnist_cached():
        pytest.skip("Keras has MNIST cached here: the text's line works")
    code = TEXT_ANSWERS["part2/ex2_lifespan"].replace("mnist_load_data()  #", "keras.datasets.mnist.load_data()  #")
    outcome = check_answers(tmp_path, {"part2/ex2_lifespan": code})["part2/ex2_lifespan"]
    assert not outcome.passes(1)
    assert all("mnist_load_data()" in check.reason for check in outcome.tier(1) if not check.passed), failures(outcome)
