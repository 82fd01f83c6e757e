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
PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "numpy",
    "pillow",
    "scikit-learn",
    "litserve",
)


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory_kb = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal:")), 0
    )
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    wrk = shutil.which("wrk")
    wrk_version = (
        subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("[")[0].strip() if wrk else ""
    )
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
        lines.append(
            f"| {row.section} | {row.name} | {row.measured} | {ratio} | {row.target} | {met} | {row.reference} |"
        )
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
- load average when the run ended: {after["load average (1, 5, 15 min)"]}
- `python -c "import keras"`: {facts.get("import_keras_seconds", float("nan")):.2f} s, \
{facts.get("import_keras_rss_mb", float("nan")):.0f} MiB
- the MNIST model's own throughput in-process on batches of {results.config.batch}: \
{facts.get("in_process_images_per_second", float("nan")):,.0f} images/s in ONNX Runtime (what Part 3 serves), \
{facts.get("in_process_keras_images_per_second", float("nan")):,.0f} images/s in Keras \
(`app.mnist.predict_probabilities`)

## Results

{summary(results)}

{table(results.rows)}

{chr(10).join(f"- {note}" for note in results.notes)}

{OPTIMISATIONS}
"""


OPTIMISATIONS = """## What each optimisation was predicted to do, and what it did

Profiled before changing anything: pyinstrument and py-spy (`uv tool run py-spy record`) on the
running servers, cProfile and plain timers on the ASGI app called in-process (no sockets), and
each thread's CPU time from /proc while wrk drives it.

1. **Keep the model in memory** (Part 3's kept models) instead of `keras.saving.load_model` per
   request. Predicted: the workshop's design pays a model load (tens to hundreds of ms) on every
   request, so about two orders of magnitude. Did: see rows 4a/4b, the workshop's design against
   Part 3.
2. **Call the model through a compiled graph** (removed with issue 11, ONNX Runtime serves instead)
   (`app.mnist.compiled_predictor`: one
   `tf.function` with a fixed `[None, 28, 28]` uint8 signature, traced once at load by
   `mnist.warm_up`, scaling inside the graph). Profile: an eager `model(x)` call spent almost all
   its time dispatching each layer's ops from Python. Predicted: about 10 x for one image. Did,
   in-process on the 2-core EPYC: one image 11 ms -> 0.8 ms; a batch of 256 2,400 -> 14,000-24,000
   images/s (`model.predict_on_batch` about 8,000-14,000; XLA `jit_compile` faster for one image
   but slower for 256, so not used).
3. **Run a few images in NumPy** (removed with issue 11: `app.mnist.FastDigitPredictor`, `app/mnist_numpy.py`). Profile
   of the graph call for one image: most of its 0.8-1.1 ms is TensorFlow's call machinery, not
   arithmetic (the CNN is about 2.5 M multiply-adds). Predicted: the two convolutions as two small
   matrix products take well under 0.5 ms. Did, first version (sliding windows, a 4-d max for
   pooling): 0.2 ms for one image. Its profile: the products took 35 us; copying windows and
   reducing over strided views took the rest. Second version, predicted about 0.1 ms: windows
   gathered with one `np.take` of precomputed row numbers (whole 32-channel rows), ordered so that
   2x2 pooling is an elementwise max of four contiguous slabs, windows that pooling drops never
   computed, bias and ReLU after pooling (a quarter of the values), the /255 folded into the first
   weights. Did: 0.08 ms for one image (2.4 x), 0.06 ms an image up to 32 images (the graph: 0.2
   ms at 4, 0.06 ms at 32), so batches up to 32 stay in NumPy. Same answers within 1e-5 (measured
   4e-8). OpenBLAS's default two threads made these products take 1.3 ms whenever the machine was
   busy; limiting BLAS to one thread per call with threadpoolctl cost 10-20 us a call, so a server
   now sets it once for the process (`mnist.one_blas_thread()`; TensorFlow has its own pool).
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
6. **Micro-batching in a thread** (`bench.batching.MicroBatcher`): concurrent requests share one
   model call in a dedicated thread. Predicted: at 8 connections the model's cost moves to the
   second core, which is what row 4b's target needs. Did, in Part 3 (a lone request answered on
   the event loop, two or more in the batcher's thread): batches formed (2 to 6 images a call at
   8 connections) but requests/s did not rise (0.60-0.63 x the floor, the same as answering on
   the event loop) and with every request in the thread one-connection p50 got worse (2 x). Thread
   CPU time from /proc: the event loop still spent 512 us a request (the floor's: 321 us) while
   the batcher thread took 134 us: the two threads take turns holding the GIL, so moving NumPy
   calls to a thread frees little of the loop. `bench/apps/kept_digits.py` keeps this design as
   a reference row.
7. **No thread-pool hop for microseconds of work.** FastAPI runs a `def` endpoint, its response
   validation and every `def` dependency in its thread pool: about 0.1 ms of latency for each hop
   on this machine (measured by calling the ASGI app in-process, no sockets). Part 3's
   `get_service` dependency and penguin route were `def`, and a single image went to the thread
   pool too. Predicted: the penguin route near the HTTP floor (whose `def read_root`, the
   workshop's hello world, pays two hops). Did: penguins 523 -> 157 us a request in-process,
   0.46 -> about 0.95 x the floor over HTTP; one digit 805 -> 575 us, then 410-440 us with the
   second NumPy version.
8. **Import scikit-learn only where it is used.** `import app.part3.main` took 4.7 s, 3.6 s of it
   `app.penguins` importing scikit-learn at module level. Predicted: about 1 s off start-up to
   ready (scikit-learn is still needed to load the skops file, but shares SciPy and NumPy with
   Keras: importing both takes 12.3 s against 11.4 s for Keras alone). Did: start-up 1.33 ->
   1.18-1.22 x `import keras`.
9. **Look up the metrics' label children once** (`RequestMetricsMiddleware.series`,
   `metrics.predictions_of`): `Counter.labels()` validates and locks on every call. A few
   microseconds a request.
10. **A digit helper process per worker** (removed with issue 11, see 14: `app/part3/digit_helper.py`). Profile at 8
    connections: the event loop is the bottleneck (100 % of a core), and decoding plus the model
    were about 0.19 ms of its 0.5 ms per request. A child process has its own GIL; it gets the
    weights as arrays (no Keras import: it starts in under a second), and the images of requests
    that arrive together in one message over a socket pair. Probe first: a batched round trip cost
    the event loop 9 us a request (42 us unbatched). Predicted: about 0.8 x the floor at 8
    connections. Did: 0.84-0.86 x in three turns (from 0.60-0.63 x). The child is used only when
    requests queue up, judged from the gap between one answer and the next request's start (25 us
    measured when requests wait for the loop, 57-83 us when a lone client waits for each answer),
    so a lone client keeps the event-loop path and its latency. If the child dies, the requests
    waiting on it are answered by the worker and the next one starts a new child (tested).

11. **Read a small one-file upload without Starlette's general multipart parser** (kept after
    issue 11's measurement, see 14: `app/part3/small_uploads.py`, a custom request class behind the predict
    router's `APIRoute`).
    Profile of the image floor in-process: of its 207 us, Starlette's streaming parse
    (python-multipart callbacks, a spooled file per part) and FastAPI's form extraction took about
    95 us; a bare app that splits the body itself answers in 112 us. The lean path only builds the
    `FormData` Starlette would have built, for the one shape every client sends for one file, and
    FastAPI still validates `file: UploadFile` (a generated-body test holds it to Starlette's
    result). Predicted: 50-60 us off one digit. Did, in-process with a pause between requests:
    Part 3 420 -> 365 us against a 255 us floor (an app with only this change: 207 -> 137 us).
12. **Match the predict routes first.** FastAPI 0.165 walks the included routers in order, and
    the static mount and the root router came first. Predicted and did: about 10 us (365 -> 360
    us in-process). Over HTTP with both, in an A/B script: one digit 1.29-1.30 x the floor in two
    turns of three (1.53 x in the third, where the floor was at its fastest), and 0.91-0.94 x its
    throughput at 8 connections (0.78-0.80 x before). In the next two full runs of this
    benchmark: 1.44 x and 1.42 x, and 1.04 x and 0.96 x.
13. **Read the penguin model's arrays without scikit-learn** (removed with issue 11: `app/penguin_file.py`). Profile of
    start-up, phase by phase: importing the app 1.2 s, loading the penguin model 4.5 s (importing
    scikit-learn, which pulls in SciPy and pandas, then skops), importing Keras 7.4 s after that,
    loading and warming the CNN 0.3 s. Loading both models in two threads changed nothing (13.5 s:
    imports hold the GIL). The service needs only the fitted arrays, and a skops file is a zip of a
    JSON schema and `.npy` arrays: read the tree `penguins.train` fits, and fall back to skops for
    anything else. Predicted: 3-4 s off start-up. Did: start-up to ready 13.5-14.0 s -> 11.5-11.7 s
    (1.02-1.10 x `import keras` in three turns, from 1.13-1.30 x), and the worker's peak RSS 755 ->
    674 MiB.

14. **Serve a file made for serving: `model.onnx` in ONNX Runtime** (issue 11). Items 2, 3, 10, 11
    and 13 fitted this one CNN and this one pipeline, and the worker still imported Keras (start-up
    1.07 x `import keras`, 724 MiB). Predicted: without Keras and scikit-learn in the worker,
    start-up to ready in 1-3 s and a worker near 100 MiB; ONNX Runtime's kernels at least as fast
    as the NumPy path. Did, in-process on the same model before the NumPy path was removed (load
    average 0.8): one image 0.038 ms in ONNX Runtime (one intra-op thread), 0.060 ms in NumPy,
    0.76 ms in Keras' compiled graph; 256 images 32,600 images/s in ONNX Runtime with one thread
    (62,400 with two), 19,500 in NumPy, 43,400 in the compiled graph. Row 9 measures ONNX Runtime
    against Keras' own `predict_on_batch` in each run. Over HTTP, on a loaded machine (load average
    3.5-7): start-up to ready 1.2-2.4 s, RSS 112-115 MiB.
    Then each hand-written piece on the prediction path was measured against its removal (three
    turns, Part 3 against the image floor, back to back, load average 3.5 then 7):
    - the digit helper process against the thread pool at 8 connections: helper 0.99 x the floor,
      thread pool 1.06 x (answering every image on the event loop: 0.64 x). Not ahead by 15 %:
      removed; queued single images went to the thread pool (ONNX Runtime releases the GIL), until
      item 15.
    - the lean one-file upload parser (small_uploads.py): at load average 7, one digit p50 1.50 x
      the floor with it, 1.52 x without, 8 connections 0.75 x with, 0.71 x without (6 %); measured
      again at load average 4 (four turns): 8 connections 0.80 x with, 0.68 x without (+17.5 %),
      one digit p50 1.56 x with, 1.66 x without (6 %). At least 10 % on row 4b: kept (it uses
      Starlette's private `_get_form`/`_form`; a test fails when they change).
    - the PNG walker (item 4, `app.images.decode_digits`'s plain-PNG path): a batch of 256 over
      HTTP 5,600 images/s with it, 3,200 without (+74 %). Kept.

15. **Predict the single images that arrive together in one call, on the event loop**
    (`app.part3.predictor.Coalescer`, issues 11 and 12). After the merges of issues 11 and 12 a
    full run gave 8 connections 0.37 x the floor with queued single images sent to the thread
    pool. Thread CPU time from /proc at 8 connections (A/B script, four turns of 3 s, load average
    2-3): the thread-pool hop cost 555-638 us of the worker's CPU a request against the floor's
    319-330 us; answering each image on the event loop 569-583 us. Profile in-process: the model
    call costs 40 us alone in a loop but about 220 us of a request's CPU (a pause before it and
    the rest of the request around it leave its weights and ONNX Runtime's code out of the
    caches), so calls, not images, are what costs. Predicted: one decoding call and one model call
    for the requests that one read of the sockets brings. Did: 430-435 us a request with one model
    call (0.73 x the floor's requests/s, hop 0.54 x), then 368 us with one decoding call as well:
    1.01 x the floor's requests/s against the hop's 0.67 x, in the same run. A bad file is decoded
    alone and refused to its own request (tested); a lone client still takes the event-loop path.
16. **The lean upload reader takes a batch of files** (`small_uploads.files_form`). Profile of a
    256-image POST /predict/batch/ in-process: Starlette's parser (python-multipart callbacks, a
    spooled file per part) was the largest share of its 18 ms of CPU. Predicted: a few ms off a
    batch. Did: 18.3 -> 15.3 ms of CPU in-process; over HTTP (A/B, four turns, load average 3):
    15,600 images/s against 13,200 with bodies over 64 KiB left to Starlette (+18 %). The
    generated-body test draws bodies of one to three parts and holds each lean form to Starlette's.
17. **Prediction ids without a system call** (`app.part3.prediction_ids`): HMAC-SHA256 and
    `secrets.token_hex` per id took 4.4 us hot; keyed BLAKE2b (hashlib's documented MAC) and a
    per-process random prefix with a counter take 2.4 us. With it, one digit p50 over HTTP was 1.45 x
    the floor, and 1.43 x with ids and the drift window's append both removed (A/B, five turns, load
    average 2-3): the bookkeeping issue 12 added costs about 0.02 x of that row.

Before issue 11 (the NumPy path), where one digit's time went on the event-loop path (in-process, a pause between
requests, 2-core EPYC), after 11 and 12: the image floor about 255 us; Part 3 about 360 us. The model (decoded
pixels to digit) takes 72 us when timed alone in a loop, 95-125 us with the same pause between
calls, and 140-170 us inside a request (Part 3 with the model replaced by a constant answers that
much faster): the rest of the request pushes its weights and buffers out of the caches. Of the 72
us, the second convolution's product takes 25 us, close to this core's fp32 peak; rearranging the
pooling and the first convolution's passes saved nothing measurable. What is left beyond the
floor and the model is about 0-40 us of middleware and bookkeeping (within this machine's noise).

Figures once quoted in `app/`'s comments (measured once on this machine; the benchmark does not
re-run them): the workshop's Part 2 loads the .keras file on every prediction, about 155 ms,
against about 2 ms for a model already in memory (`app/part2/serving.py`); skl2onnx's `cdist`
option computes the KNN distances in about 40 us a penguin where the default Scan loop takes
1.2 ms (`app/onnx_export.py`).
"""
