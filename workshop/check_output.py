"""What `workshop check` shows while the checks run: the learner's own prints and the checks' `[check]`
lines, without the frameworks' noise.

TensorFlow's C++ core logs through absl before Python can configure anything (`WARNING: All log
messages before absl::InitializeLog() ...`, `I0000 00:00:... port.cc:153] oneDNN custom operations
are on ...`), and TF_CPP_MIN_LOG_LEVEL no longer silences those lines: they are dropped here, as the
child's output streams by. Keras' progress bars are switched off at their source by the Part 2
checks (tests/exercises/part2/conftest.py); one in a learner's own code is dropped here too.
"""

import re
import subprocess
import sys
from collections.abc import Iterable

# One line each; a line the learner prints never looks like these.
NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    # absl's C++ log format: severity, MMDD, time, thread id, file:line]
    re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "),
    # TensorFlow's older C++ log format: date, time, severity, source file
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./-]+:\d+\] "),
    # The second line of TensorFlow's CPU-instructions notice
    re.compile(r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$"),
    # A Keras progress bar: "1/1 ━━━━━━━━━━━━━━━━━━━━ 0s 40ms/step", with or without its colour codes
    re.compile(r"^\s*\d+/\d+ [━─]+"),
)
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def is_noise(line: str) -> bool:
    """Whether a line of the checks' output is a framework's, not the learner's nor the checks'."""
    shown = ANSI_CODE.sub("", line).rstrip("\r\n").split("\r")[-1]  # a bar redraws itself after each \r
    return any(pattern.search(shown) for pattern in NOISE)


def without_noise(lines: Iterable[str]) -> Iterable[str]:
    return (line for line in lines if not is_noise(line))


def show_without_noise(command: list[str], **popen) -> int:
    """Run `command`, its stderr merged into its stdout, and print its lines as they come, noise left out.
    `env` should set PYTHONUNBUFFERED=1, or a Python child's prints arrive in blocks, late."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1, **popen
    ) as child:
        assert child.stdout is not None
        for line in without_noise(child.stdout):
            sys.stdout.write(line)
            sys.stdout.flush()
        return child.wait()
