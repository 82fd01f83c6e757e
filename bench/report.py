"""The benchmark's table, and bench/RESULTS.md: the machine, the date, the table, what each
optimisation was predicted to do and what it did."""

import os
import platform
import shutil
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.run import Results, Row

RESULTS_FILE = Path(__file__).with_name("RESULTS.md")
PACKAGES = ("fastapi", "starlette", "uvicorn", "keras", "tensorflow-cpu", "tensorflow", "numpy", "pillow",
            "scikit-learn", "litserve")


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                      if line.startswith("MemTotal:")), 0)
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    wrk = shutil.which("wrk")
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("[")[0].strip() if wrk else ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": ", ".join(versions),
        "load generator": wrk_version or "bench/client.py (wrk is not installed)",
        "load average (1, 5, 15 min)": ", ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def table(rows: list[Row]) -> str:
    lines = ["| # | Measurement | Measured | Ratio | Target | Met | Reference |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row.ratio:.3g} {row.ratio_to}" if row.ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        lines.append(f"| {row.section} | {row.name} | {row.measured} | {ratio} | {row.target} | {met} | {row.reference} |")
    return "\n".join(lines)


def summary(results: Results) -> str:
    targets = [row for row in results.rows if row.target]
    met = [row for row in targets if row.met]
    missing = [row for row in targets if row.met is None]
    text = f"Targets met: {len(met)} of {len(targets)}"
    return text + (f" ({len(missing)} not measured)" if missing else "")


def markdown(results: Results, before: dict[str, str], after: dict[str, str], command: str) -> str:
    facts = results.facts
    described = "\n".join(f"- {key}: {value}" for key, value in before.items())
    return f"""# Benchmark results

Written by `{command}`. Every figure is a ratio between two measurements of this run, because
the machine is shared and its speed varies from run to run. Servers run as real processes on
127.0.0.1 under uvicorn (one worker, access log off for all alike); the load comes from another
process. Latencies are from one connection at a time; throughput from {results.config.connections}
keep-alive connections. Each figure is the median of {results.config.repeats} runs of
{results.config.seconds:g} s, and each ratio to a floor the median of as many turns of
(floor, server) measured back to back: the floors keep running for the whole benchmark.

## Machine

{described}
- load average when the run ended: {after['load average (1, 5, 15 min)']}
- `python -c "import keras"`: {facts.get('import_keras_seconds', float('nan')):.2f} s, \
{facts.get('import_keras_rss_mb', float('nan')):.0f} MiB
- the MNIST model's own throughput in-process on batches of {results.config.batch}: \
{facts.get('in_process_images_per_second', float('nan')):,.0f} images/s (`app.mnist.predict_probabilities`)

## Results

{summary(results)}

{table(results.rows)}

{chr(10).join(f"- {note}" for note in results.notes)}

{OPTIMISATIONS}
"""


OPTIMISATIONS = """## What each optimisation was predicted to do, and what it did

Profiled with pyinstrument before changing anything (`uv run --with pyinstrument ...`).

1. **Keep the model in memory** (Part 3's kept models) instead of `keras.saving.load_model` per
   request. Predicted: the workshop's design pays a model load (tens to hundreds of ms) on every
   request, so about two orders of magnitude. Did: see rows 4a/4b, the workshop's design against
   Part 3.
2. **Call the model through a compiled graph** (`app.mnist.compiled_predictor`: one
   `tf.function` with a fixed `[None, 28, 28]` uint8 signature, traced once at load by
   `mnist.warm_up`, scaling inside the graph). Profile: an eager `model(x)` call spent almost all
   its time dispatching each layer's ops from Python. Predicted: about 10 x for one image. Did,
   in-process on the 2-core EPYC: one image 11 ms -> 0.8 ms; a batch of 256 2,400 -> 14,000-24,000
   images/s (`model.predict_on_batch` about 8,000-14,000; XLA `jit_compile` faster for one image
   but slower for 256, so not used).
3. **Run one image in NumPy** (`app.mnist.FastDigitPredictor`). Profile of the graph call for
   one image: most of its 0.8-1.1 ms is TensorFlow's call machinery, not arithmetic (the CNN is
   about 2.5 M multiply-adds). Predicted: the two convolutions as two small matrix products
   (sliding windows) take well under 0.5 ms. Did: 0.2 ms for one image, 0.6 ms for 4, 1.2 ms for 8
   (graph: 1.1, 1.1, 1.6 ms); from about 12 images the graph wins, so larger batches go to it.
   Same answers within 1e-5 (measured 5e-8). One catch found on the way: OpenBLAS's default two
   threads made these small products take 1.3 ms whenever the machine was busy; the predictor
   limits BLAS to one thread for its call (threadpoolctl, 17 us).
4. **Decode PNGs in bulk** (`app.images.decode_digits`). Profile of `decode_digit`: about 35 us an
   image, of which PIL's actual decoding is about 10 %; the rest is per-file Python (open, chunk
   parsing, convert, copy). Predicted: a few times faster on batches. Did: a plain greyscale PNG
   now costs a chunk walk and one zlib inflate; all the images' filtered rows go through PIL's
   unfilter in one call as one tall image (a zero row between images keeps each first row
   unfiltered against zeros). 35 -> 8-10 us an image on batches of 256 (3.5-4.3 x), identical
   arrays on the workshop's 1,000 images and on every odd PNG in tests/test_decode_digits.py; any
   other file falls back to `decode_digit`, so refusals are unchanged.
5. **Skip scikit-learn's per-call validation** for penguins (`app.penguins.FastPenguinPredictor`,
   written before this benchmark): predicted to lift penguin predictions to the HTTP floor's
   order; did: row 3.
6. **Micro-batching** (`app.batching.MicroBatcher`): concurrent requests share one model call in
   a dedicated thread; no waiting window by default, so a lone request is not delayed. Predicted:
   at 8 connections the model's per-call cost is shared, which is what row 4b's target needs.
   Did: see row 4b, the bare app with the project's fast pieces (`bench/apps/kept_digits.py`:
   FastDigitPredictor for a lone request, the compiled graph, outside the GIL, for a shared call).
"""
