"""The benchmark runs and reports every row. No figure is checked against a time: these machines
are shared, and speed is what the benchmark prints, not what the suite asserts."""

import json
import math
import os
import subprocess
import sys
from collections import Counter

import pytest

from app.paths import PROJECT_ROOT
from bench import load, report
from bench.run import ROWS_PER_SECTION, Row
from bench.servers import free_port, serve, uvicorn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`python -m bench --quick` as a learner would run it (in its own process: it starts servers,
    and this process never imports Keras)."""
    folder = tmp_path_factory.mktemp("bench")
    env = {key: value for key, value in os.environ.items() if key != "WORKSHOP_MODELS_DIR"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--json",
            str(folder / "rows.json"),
            "--output",
            str(folder / "RESULTS.md"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((folder / "rows.json").read_text()), (folder / "RESULTS.md").read_text(), done.stdout


def test_every_row_is_measured_with_a_finite_ratio(quick_run):
    results, _, _ = quick_run
    rows = [Row(**row) for row in results["rows"]]
    assert Counter(row.section for row in rows) == Counter(ROWS_PER_SECTION)
    unavailable = [f"{row.name}: {row.measured}" for row in rows if "not available" in row.measured]
    assert not unavailable, unavailable
    failed = [row.name for row in rows if "FAILED" in row.measured]
    assert not failed, f"requests failed under load: {failed}"
    for row in rows:
        if row.section in ("1", "2"):  # the floors are the references
            assert row.ratio is None
        else:
            assert row.ratio is not None and math.isfinite(row.ratio) and row.ratio > 0, row
    with_targets = [row for row in rows if row.target]
    assert len(with_targets) == 12 and all(row.met in (True, False) for row in with_targets)


def test_the_report_describes_the_machine_and_prints_the_table(quick_run):
    results, markdown, stdout = quick_run
    for fact in ("import_keras_seconds", "in_process_images_per_second", "model_file"):
        assert fact in results["facts"]
    assert "## Machine" in markdown and "cores" in markdown and "python:" in markdown and "tensorflow" in markdown
    assert "| # | Measurement |" in markdown and "predicted" in markdown
    assert stdout.count("\n| ") >= sum(ROWS_PER_SECTION.values())  # the table went to stdout too
    assert "Targets met:" in stdout


def test_the_python_load_client_measures_a_real_server(monkeypatch):
    """The fallback for machines without wrk: keep-alive requests, latencies, errors counted."""
    monkeypatch.setenv("BENCH_CLIENT", "python")
    port = free_port()
    with serve("hello", uvicorn("bench.apps.hello:app", port), port) as server:
        good = load.measure(server.url("/"), connections=2, seconds=0.5)
        missing = load.measure(server.url("/nowhere"), connections=1, seconds=0.3)
        assert server.ready_seconds > 0 and server.peak_rss_mb() > 0
    assert good.tool == "python" and good.requests > 0 and good.errors == 0
    assert 0 < good.p50_ms <= good.p99_ms
    assert missing.requests > 0 and missing.errors == missing.requests  # 404s are failures


def test_multipart_bodies_carry_files_and_fields():
    body, content_type = load.multipart([("files", "a.png", b"\x89PNG"), ("files", "b.zip", b"PK")], {"epochs": "3"})
    boundary = content_type.split("boundary=")[1]
    parts = body.split(f"--{boundary}".encode())
    assert len(parts) == 5 and parts[-1] == b"--\r\n"
    assert b'name="epochs"\r\n\r\n3\r\n' in parts[1]
    assert b'filename="a.png"' in parts[2] and b"image/png" in parts[2] and b"\x89PNG" in parts[2]
    assert b"application/zip" in parts[3]


def test_the_table_marks_unmet_targets():
    rows = [Row("3", "a", "1 req/s", 0.5, "× (1)", "≥ 0.6", False), Row("1", "floor", "2 req/s")]
    text = report.table(rows)
    assert "**no**" in text and "0.5 × (1)" in text and text.count("\n") == 3
