"""What `workshop check` shows: a file that does not import says why as Python does (type, line, caret),
and while the checks run the learner sees their own prints and the checks' lines, not framework noise."""

import re

import pytest

from tests.text_answers import AT_TODOS, LIFESPAN_BODY, at_todos
from workshop import cli as workshop
from workshop.check_output import is_noise

HELLO = "part1/ex1_hello"


def write_side(tmp_path, name: str, code: str) -> str:
    side = tmp_path / "side"
    (side / name).parent.mkdir(parents=True, exist_ok=True)
    (side / f"{name}.py").write_text(code)
    return str(side)


def hello_with(line: str, replacing: str = 'return {"Hello": "World"}') -> str:
    """The text's exercise 1 at its TODOs, with one line of it changed."""
    code = at_todos(HELLO, AT_TODOS[HELLO])
    assert replacing in code
    return code.replace(replacing, line, 1)


def only_reason(outcome: workshop.Outcome) -> workshop.Check:
    """Every check failed for the same reason (the file does not import): that check's reason and detail."""
    assert outcome.checks and not any(check.passed for check in outcome.checks)
    assert len({(check.reason, check.detail) for check in outcome.checks}) == 1, outcome.checks
    return outcome.checks[0]


def test_a_syntax_error_shows_its_type_line_and_caret(tmp_path, capsys):
    side = write_side(tmp_path, HELLO, hello_with('return {"Hello": "World"'))
    lines = (tmp_path / "side" / f"{HELLO}.py").read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if "World" in text)
    failed = only_reason(workshop.run_checks([workshop.test_file(HELLO)], side)[HELLO])
    assert re.search(rf"ex1_hello\.py does not run: SyntaxError on line {line}: '{{' was never closed$", failed.reason)
    code, caret = failed.detail.splitlines()
    assert code.strip() == 'return {"Hello": "World"'
    assert caret.strip() == "^" and caret.index("^") == code.index("{")  # under the brace never closed

    assert workshop.check(HELLO, side) == 1
    shown = capsys.readouterr().out
    assert "None of the 3 checks could run" in shown and failed.reason in shown
    assert all(f"  {line}\n" in shown for line in failed.detail.splitlines())
    assert 'failed on setup with "' not in shown and "Traceback" not in shown


def test_an_import_error_shows_its_type_line_and_caret(tmp_path):
    code = hello_with("from app.models.penguins import no_such_name\n\n\n@app.get", replacing="@app.get")
    side = write_side(tmp_path, HELLO, code)
    failed = only_reason(workshop.run_checks([workshop.test_file(HELLO)], side)[HELLO])
    assert "does not run: ImportError on line" in failed.reason
    assert "cannot import name 'no_such_name' from 'app.models.penguins'" in failed.reason
    code_line, caret = failed.detail.splitlines()
    assert code_line.strip() == "from app.models.penguins import no_such_name" and set(caret.strip()) == {"^"}


def test_framework_noise_is_dropped_and_the_learners_lines_are_kept():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1796445466.652459    1688 port.cc:153] oneDNN custom operations are on. You may see ...\n",
        "2024-05-01 10:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow ...\n",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
        "appropriate compiler flags.\n",
        "\x1b[1m1/1\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m0s\x1b[0m 40ms/step\n",
        "\r1/8 ━━━━━━━━━━━━━━━━━━━━ 1s 200ms/step\r8/8 ━━━━━━━━━━━━━━━━━━━━ 0s 30ms/step\n",
    ]
    kept = [
        "training: epoch 1/1, accuracy 0.500\n",
        "    [check] training on 512 images for 1 epoch (the check's own small settings) ...\n",
        "my model says 7/10 of the digits are right\n",
        "I think it works\n",
    ]
    assert [line for line in noise if not is_noise(line)] == []
    assert [line for line in kept if is_noise(line)] == []


@pytest.mark.slow
def test_a_part2_check_shows_the_learners_prints_and_one_line_per_epoch(tmp_path, capsys):
    """The text's exercise 2 at its TODOs, with a print of the learner's: the check's output holds that
    print and the checks' lines, one at each training's start and end (its one epoch), and none of
    TensorFlow's start-up logs nor Keras' progress bars (the text's `model.predict` draws one per call)."""
    name = "part2/ex2_lifespan"
    mine = 'print("my own line: the first training starts")'
    fills = [LIFESPAN_BODY.replace("training()", f"{mine}\ntraining()", 1), *AT_TODOS[name][1:]]
    side = write_side(tmp_path, name, at_todos(name, fills))
    outcome = workshop.run_checks([workshop.test_file(name)], side, quiet=False)[name]
    shown = capsys.readouterr().out
    assert outcome.passes(1), [check.reason for check in outcome.tier(1) if not check.passed]
    assert "my own line: the first training starts" in shown
    started, ended = shown.count("[check] training on "), shown.count("[check] trained in ")
    assert started == ended >= 1, shown
    assert re.search(r"\[check\] trained in [\d.]+ s, accuracy [\d.]+, loss [\d.]+", shown), shown
    for noise in ("absl::InitializeLog", "oneDNN", "━", "\x1b[", "ms/step"):
        assert noise not in shown, f"{noise!r} in the check's output:\n{shown}"


@pytest.mark.parametrize(
    ("message", "reason", "detail"),
    [
        (  # a file that does not import, as pytest reports a fixture's error
            "failed on setup with \"AssertionError: ex1_hello.py does not run: SyntaxError on line 3: '{' was never "
            'closed\n    return {"Hello"\n           ^"',
            "ex1_hello.py does not run: SyntaxError on line 3: '{' was never closed",
            '    return {"Hello"\n           ^',
        ),
        (  # a plain `assert` with a message: pytest's explanation is not the learner's to read
            "AssertionError: mount a volume on /code/models\nassert PurePosixPath('/code/models') in {}\n + where",
            "mount a volume on /code/models",
            "",
        ),
        (  # an exception of the app's, named with its module
            "app.onnx_export.ServingExportFailed: mnist: ONNX Runtime gives another class",
            "ServingExportFailed: mnist: ONNX Runtime gives another class",
            "",
        ),
    ],
    ids=["setup-error", "plain-assert", "module-qualified"],
)
def test_a_reports_failure_becomes_a_sentence_and_its_detail(message, reason, detail):
    import xml.etree.ElementTree as ET

    problem = ET.Element("error", {"message": message})
    assert workshop._why(problem) == (reason, detail)
