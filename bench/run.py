"""The benchmark's measurements, section by section, each figure a ratio to another of the same run."""

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from app.images import decode_digits  # Pillow and NumPy only
from bench.load import Load, load_tool, measure, multipart
from bench.loop_recovery import SERVICE_ENV, recover
from bench.object_store import object_store
from bench.servers import PROJECT_ROOT, Server, Started, free_port, http, serve, start, stop, uvicorn
from bench.shadow_challenger import publish_challenger

DATA_DIR = PROJECT_ROOT / "data"
PENGUIN_QUERY = "/predict/?bill=40.3&flipper=195"


@dataclass(frozen=True)
class Config:
    seconds: float = 5.0  # one load run
    slow_seconds: float = 10.0  # a load run on the workshop's design (a few requests per second)
    repeats: int = 3  # load runs per figure; the median is kept
    connections: int = 8
    batch: int = 256
    train_images: int = 1000  # the prepared MNIST model's training set
    finetune_epochs: int = (
        100  # the service's maximum; long enough to outlast the measurement (stopped with the server)
    )
    keras_imports: int = 3  # `python -c "import keras"` runs; the median is kept
    finetune_wait_epochs: int = 1  # measure once the fine-tune has run this many epochs (0: once it starts)
    # Start the Keras servers together, early, to save minutes of imports. Only for --quick: it
    # skews start-up and every figure measured meanwhile, which --quick does not report anyway.
    parallel_start: bool = False
    queue_only: bool = False  # only the training queue's rows (section 9), with what they need
    store_only: bool = False  # only the object store's rows (section 14), with what they need
    store_jobs: int = 9  # fine-tunes per store in section 14; the median delay is kept (a poll phase is noisy)


SHADOW_ROW = "MNIST one at a time with a challenger in shadow: Part 3 service"
LOOP_ROW = "From the first drifted request to a recovered version serving (penguins in bare cm): Part 3 service"
STORE_ROWS = {
    "folder": "From a job's end to both replicas serving its version: Part 3, models in a local folder",
    "bucket": "From a job's end to both replicas serving its version: Part 3, models in S3 (moto on loopback)",
    "serving": "MNIST one at a time, models in S3, the version cached: Part 3 service",
}
STORE_POLL = 0.2  # the replicas' WORKSHOP_POLL_INTERVAL in section 14 (the default, 1 s, would swamp the store)
QUEUE_ROWS = {
    "latency": "From POST /train/ (data/train_img.zip) to the end of its first epoch, trainer idle and warm: "
    "Part 3 service",
    "swap": "From a job's end to every replica serving its version: Part 3 service, 2 replicas",
}


FULL = Config()
QUICK = Config(
    seconds=1.0,
    slow_seconds=1.0,
    repeats=1,
    train_images=300,
    finetune_epochs=3,
    keras_imports=1,
    finetune_wait_epochs=0,
    parallel_start=True,
    store_jobs=2,
)


@dataclass(frozen=True)
class Spec:
    """How to start one of the servers that load the MNIST model."""

    name: str
    command: list[str]
    port: int
    ready_path: str
    env: dict[str, str]


@dataclass
class Row:
    section: str
    name: str
    measured: str = ""
    ratio: float | None = None  # None: a reference row, or not measured (see `measured`)
    ratio_to: str = ""
    target: str = ""
    met: bool | None = None
    reference: str = ""  # the workshop's figure, or another server's


@dataclass
class Figures:
    """The median of repeated load runs."""

    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str

    @classmethod
    def of(cls, runs: list[Load]) -> "Figures":
        return cls(
            statistics.median(run.per_second for run in runs),
            statistics.median(run.p50_ms for run in runs),
            statistics.median(run.p99_ms for run in runs),
            sum(run.errors for run in runs),
            runs[0].tool,
        )

    def latency(self) -> str:
        return f"p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms" + self.error_note()

    def rate(self, unit: str = "req/s", scale: float = 1.0) -> str:
        return f"{self.per_second * scale:,.0f} {unit}" + self.error_note()

    def error_note(self) -> str:
        return f" ({self.errors} FAILED requests)" if self.errors else ""


@dataclass
class Results:
    config: Config
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "config": asdict(self.config),
                "rows": [asdict(row) for row in self.rows],
                "notes": self.notes,
                "facts": self.facts,
            },
            indent=2,
        )


def at_most(ratio: float, limit: float) -> bool:
    return ratio <= limit


def at_least(ratio: float, limit: float) -> bool:
    return ratio >= limit


@dataclass(frozen=True)
class Floor:
    """A floor server kept running for the whole run, so that each figure is measured in turns with
    its floor (floor, server, floor, server, ...) and compared with the floor of its own minute."""

    url: str
    body: tuple[bytes, str] | None
    connections: int


class Bench:
    def __init__(self, config: Config, log: Callable[[str], None] = print) -> None:
        self.config = config
        began = time.perf_counter()
        self.log = lambda line: log(f"[{time.perf_counter() - began:6.1f} s] {line}")
        self.results = Results(config)
        self.work = Path(tempfile.mkdtemp(prefix="bench-"))
        self.store = self.work / "models"
        png = (DATA_DIR / "test_image" / "test_img7.png").read_bytes()
        self.single = multipart([("file", "test_img7.png", png)])
        with zipfile.ZipFile(DATA_DIR / "train_img.zip") as archive:
            names = [name for name in archive.namelist() if name.endswith(".png")][: config.batch]
            pngs = [archive.read(name) for name in names]
        self.batch = multipart([("files", Path(name).name, png) for name, png in zip(names, pngs, strict=True)])
        pixels = decode_digits(pngs)
        self.oip_one, self.oip_batch = inference_request(pixels[:1]), inference_request(pixels)
        self.train_zip = multipart(
            [("files", "train_img.zip", (DATA_DIR / "train_img.zip").read_bytes())],
            fields={"epochs": str(config.finetune_epochs)},
        )

    # -- helpers ------------------------------------------------------------------------------------
    def measure(
        self, url: str, connections: int, body: tuple[bytes, str] | None = None, seconds: float | None = None
    ) -> Load:
        content, content_type = body or (b"", None)
        return measure(url, connections, seconds or self.config.seconds, content, content_type)

    def load(
        self, url: str, connections: int, body: tuple[bytes, str] | None = None, seconds: float | None = None
    ) -> Figures:
        return Figures.of([self.measure(url, connections, body, seconds) for _ in range(self.config.repeats)])

    def against(
        self,
        floor: Floor,
        url: str,
        body: tuple[bytes, str] | None,
        connections: int,
        ratio: Callable[[Load, Load], float],
        seconds: float | None = None,
    ) -> tuple[Figures, float]:
        """The server's figures, and the median over turns of ratio(server's run, floor's run)."""
        runs, ratios = [], []
        for _ in range(self.config.repeats):
            reference = self.measure(floor.url, floor.connections, floor.body)
            runs.append(self.measure(url, connections, body, seconds))
            ratios.append(ratio(runs[-1], reference))
        return Figures.of(runs), statistics.median(ratios)

    @staticmethod
    def rate_ratio(run: Load, reference: Load) -> float:
        return run.per_second / reference.per_second

    @staticmethod
    def p50_ratio(run: Load, reference: Load) -> float:
        return run.p50_ms / reference.p50_ms

    def add(self, row: Row) -> Row:
        self.results.rows.append(row)
        self.log(
            f"  {row.section} {row.name}: {row.measured}"
            + (f" -> {row.ratio:.3g} {row.ratio_to}" if row.ratio is not None else "")
        )
        return row

    def ratio_row(
        self,
        section: str,
        name: str,
        measured: str,
        ratio: float,
        ratio_to: str,
        target: tuple[Callable[[float, float], bool], float] | None = None,
        reference: str = "",
    ) -> Row:
        met, target_text = None, ""
        if target is not None:
            check, limit = target
            met = check(ratio, limit)
            target_text = f"{'≤' if check is at_most else '≥'} {limit:g}"
        return self.add(Row(section, name, measured, ratio, ratio_to, target_text, met, reference))

    def unavailable(self, section: str, names: list[str], reason: str) -> None:
        for name in names:
            self.add(Row(section, name, f"not available: {reason}"))

    def check_answers(self, url: str, body: tuple[bytes, str] | None, expect: str) -> None:
        """One request before loading a server: a fast wrong answer would be no figure at all."""
        data, content_type = body or (None, None)
        status, answer = http(url, data=data, headers={"Content-Type": content_type} if content_type else {})
        if status != 200 or expect.encode() not in answer:
            raise RuntimeError(f"{url} answered {status}: {answer[:300]!r}")

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> Results:
        facts = self.results.facts
        facts["load_tool"] = load_tool()
        self.log("preparing the model store, measuring the model in-process, timing `import keras` ...")
        if self.config.queue_only:
            self.log("--queue-only: the Part 3 server and the training queue's rows (9) only")
        with ThreadPoolExecutor(2 if self.config.parallel_start else 1) as pool:
            prepared = pool.submit(self.prepare_models)
            if not self.config.parallel_start:
                prepared.result()  # alone: the import is timed on a quiet machine
            imported = pool.submit(self.time_keras_import)
            facts.update(prepared.result())
            facts["import_keras_seconds"], facts["import_keras_rss_mb"] = imported.result()
        self.specs = self.digit_servers()
        self.started: dict[str, Started] = {}
        if self.config.parallel_start:
            self.started = {key: start(spec.name, spec.command, spec.env) for key, spec in self.specs.items()}
        try:
            with ExitStack() as floors:
                port = free_port()
                hello = floors.enter_context(serve("HTTP floor", uvicorn("bench.apps.hello:app", port), port))
                port = free_port()
                image = floors.enter_context(
                    serve("image floor", uvicorn("bench.apps.image_floor:app", port), port, "/docs")
                )
                self.check_answers(image.url("/predict/"), self.single, '"result"')
                connections = self.config.connections
                self.http_floor = Floor(hello.url("/"), None, connections)
                self.image_floor_one = Floor(image.url("/predict/"), self.single, 1)
                self.image_floor_many = Floor(image.url("/predict/"), self.single, connections)
                if self.config.queue_only:
                    self.part3()
                elif self.config.store_only:
                    self.store_rows()
                else:
                    self.floor_rows()
                    self.runtime_rows()
                    self.penguins()
                    self.part3()
                    self.loop_row()
                    self.store_rows()
                    self.other_digit_servers()
        finally:
            for started in self.started.values():  # any left unused by an error
                stop(started.process)
                started.log.unlink(missing_ok=True)
            for _ in range(5):  # a trainer killed with its server may still be writing for a moment
                shutil.rmtree(self.work, ignore_errors=True)
                if not self.work.exists():
                    break
                time.sleep(1)
        self.results.rows.sort(key=lambda row: SECTION_ORDER.index(row.section))
        return self.results

    def digit_servers(self) -> dict[str, Spec]:
        model_file, serving_file = self.results.facts["model_file"], self.results.facts["serving_file"]
        batch = str(self.config.connections)
        litserve = [sys.executable, "-m", "bench.apps.litserve_digits", serving_file]
        specs = {}
        for key, name, command, ready_path, env in [
            (
                "part3",
                "Part 3",
                lambda port: uvicorn("app.part3.main:app", port),
                "/health/ready",
                {
                    "WORKSHOP_MODELS_DIR": str(self.store),
                    "WORKSHOP_API_KEY": "",
                    "WORKSHOP_LOG_LEVEL": "warning",
                    "WORKSHOP_SHUTDOWN_GRACE": "2",
                    # The benchmark's model is deliberately small and its fine-tunes short: the promotion
                    # gate would rightly refuse them, and the rows time serving, not the gate.
                    "WORKSHOP_GATE_FLOOR__MNIST": "0",
                    "WORKSHOP_GATE_MARGIN__MNIST": "1",
                },
            ),
            (
                "kept",
                "a bare app micro-batching in a thread (bench/apps/kept_digits.py)",
                lambda port: uvicorn("bench.apps.kept_digits:app", port),
                "/docs",
                {"BENCH_MODEL_FILE": serving_file},
            ),
            (
                "workshop",
                "the workshop's design (the model loaded from disk per request)",
                lambda port: uvicorn("bench.apps.workshop_digits:app", port),
                "/docs",
                {"BENCH_MODEL_FILE": model_file},
            ),
            ("litserve", "LitServe, no batching", lambda port: [*litserve, str(port)], "/health", {}),
            (
                "litserve-batch",
                f"LitServe, batching up to {batch}",
                lambda port: [*litserve, str(port), "--batch", batch],
                "/health",
                {},
            ),
        ]:
            port = free_port()
            specs[key] = Spec(name, command(port), port, ready_path, env)
        if not litserve_installed():
            del specs["litserve"], specs["litserve-batch"]
        return specs

    def serve_digits(self, key: str):
        spec = self.specs[key]
        return serve(spec.name, spec.command, spec.port, spec.ready_path, spec.env, started=self.started.pop(key, None))

    def prepare_models(self) -> dict:
        command = [
            sys.executable,
            "-m",
            "bench.prepare_models",
            str(self.store),
            "--train-images",
            str(self.config.train_images),
            "--batch",
            str(self.config.batch),
            "--seconds",
            str(self.config.seconds),
        ]
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"preparing the models failed:\n{done.stderr[-3000:]}")
        prepared = json.loads(done.stdout.strip().splitlines()[-1])
        rates = prepared["rates"]
        return {
            "model_file": prepared["model_file"],
            "serving_file": prepared["serving_file"],
            "model_accuracy": prepared["accuracy"],
            "in_process_rates": rates,
            "in_process_images_per_second": rates[f"onnxruntime_{prepared['batch']}"],
            "in_process_keras_images_per_second": rates[f"keras_{prepared['batch']}"],
        }

    def time_keras_import(self) -> tuple[float, float]:
        """Wall time of `python -c "import keras"` from process start to exit, and its peak RSS (MiB)."""
        code = "import keras, resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        seconds, rss = [], []
        for _ in range(self.config.keras_imports):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
            )
            seconds.append(time.perf_counter() - started)
            rss.append(int(done.stdout.split()[-1]) / 1024)
        return statistics.median(seconds), statistics.median(rss)

    # -- the sections -------------------------------------------------------------------------------
    def floor_rows(self) -> None:
        floor = self.load(self.http_floor.url, self.http_floor.connections)
        self.add(
            Row(
                "1",
                f"HTTP floor: GET / on a bare FastAPI app, {self.config.connections} connections",
                f"{floor.rate()}, {floor.latency()}",
                reference="the reference for (3)",
            )
        )
        one = self.load(self.image_floor_one.url, 1, self.single)
        many = self.load(self.image_floor_many.url, self.config.connections, self.single)
        self.add(
            Row(
                "2",
                "Image floor: POST one PNG, decoded, no model; 1 connection",
                one.latency(),
                reference="the reference for (4) latency",
            )
        )
        self.add(
            Row(
                "2",
                f"Image floor, {self.config.connections} connections",
                many.rate(),
                reference="the reference for (4) throughput",
            )
        )

    def runtime_rows(self) -> None:
        """The same CNN in-process: ONNX Runtime (what Part 3 serves) against Keras, 1 and 256 images."""
        rates, batch = self.results.facts["in_process_rates"], self.config.batch
        removed = {
            1: "the removed NumPy path (app/mnist_numpy.py): 16,729 images/s; the compiled graph 1,322",
            batch: "the removed NumPy path: 19,479 images/s; the compiled graph 43,393",
        }
        for size in (1, batch):
            ort, keras = rates[f"onnxruntime_{size}"], rates[f"keras_{size}"]
            self.ratio_row(
                "10",
                f"In-process, {size} image{'s' if size > 1 else ''} a call: ONNX Runtime vs Keras",
                f"{ort:,.0f} images/s (Keras `predict_on_batch`: {keras:,.0f})",
                ort / keras,
                "× Keras",
                reference=f"{removed[size]} (measured 2026-12-01 before removal, same model)",
            )

    def penguin_row(self, name: str, url: str, target: tuple | None = None) -> None:
        self.check_answers(url, None, "Adelie")
        figures, ratio = self.against(self.http_floor, url, None, self.config.connections, self.rate_ratio)
        self.ratio_row(
            "3",
            name,
            figures.rate(),
            ratio,
            "× (1) req/s",
            target,
            "the workshop's code: about 0.12 × (issue 5)" if target else "",
        )

    def penguins(self) -> None:
        servers = [
            (
                "Penguins: the workshop's code (sklearn `predict` per request)",
                lambda port: uvicorn("bench.apps.workshop_penguins:app", port),
            ),
            (
                "Penguins: Part 1 solution (solutions/part1/ex2_predict.py)",
                lambda port: uvicorn("ex2_predict:app", port, "--app-dir", str(PROJECT_ROOT / "solutions" / "part1")),
            ),
        ]
        for name, command in servers:
            port = free_port()
            try:
                with serve(name, command(port), port, "/docs") as server:
                    self.penguin_row(name, server.url(PENGUIN_QUERY))
            except (RuntimeError, OSError) as error:
                self.unavailable("3", [name], str(error).splitlines()[0])

    def digit_rows(self, name: str, url: str, seconds: float | None = None, targets: bool = False) -> Figures:
        """One image at a time (p50 against the image floor's) and on many connections (req/s)."""
        self.check_answers(url, self.single, '"result"')
        one, ratio = self.against(self.image_floor_one, url, self.single, 1, self.p50_ratio, seconds)
        self.ratio_row(
            "4a",
            f"MNIST one at a time: {name}",
            one.latency(),
            ratio,
            "× (2) p50",
            (at_most, 1.5) if targets else None,
            "the workshop's design: about 120 ×; LitServe: about 2.3 × (issue 5)" if targets else "",
        )
        many, ratio = self.against(
            self.image_floor_many, url, self.single, self.config.connections, self.rate_ratio, seconds
        )
        self.ratio_row(
            "4b",
            f"MNIST {self.config.connections} connections: {name}",
            many.rate(),
            ratio,
            "× (2) req/s",
            (at_least, 0.75) if targets else None,
            "a kept model: about 0.49 ×; LitServe: about 0.46 ×, batching 0.5 × (issue 5)" if targets else "",
        )
        return one

    def part3(self) -> None:
        connections, batch = self.config.connections, self.config.batch
        names = [
            ("3", "Penguins: Part 3 service"),
            ("4a", "MNIST one at a time: Part 3 service"),
            ("4b", f"MNIST {connections} connections: Part 3 service"),
            ("5", f"MNIST batch of {batch} over HTTP: Part 3 service"),
            ("6", "Start-up to /health/ready with saved models: Part 3 service"),
            ("7", "Prediction p50 while a 1,000-image fine-tune runs: Part 3 service"),
            ("8", "Peak RSS of the worker, both models loaded: Part 3 service"),
            ("12", SHADOW_ROW),
            ("11", "MNIST one image by the Open Inference Protocol (JSON): Part 3 service"),
            ("11", f"MNIST batch of {batch} by the Open Inference Protocol (JSON): Part 3 service"),
            *(("9", name) for name in QUEUE_ROWS.values()),
        ]
        try:
            self.log("starting the Part 3 service ...")
            with self.serve_digits("part3") as server:
                self.part3_rows(server)
        except (RuntimeError, OSError) as error:
            measured = {row.name for row in self.results.rows}
            for section, name in names:
                if name not in measured and (not self.config.queue_only or section == "9"):
                    self.unavailable(section, [name], str(error).splitlines()[0])

    def part3_rows(self, server: Server) -> None:
        config, facts = self.config, self.results.facts
        self.queue_rows(server)
        if config.queue_only:
            return
        self.ratio_row(
            "6",
            "Start-up to /health/ready with saved models: Part 3 service",
            f"{server.ready_seconds:.2f} s",
            server.ready_seconds / facts["import_keras_seconds"],
            f"× `import keras` ({facts['import_keras_seconds']:.2f} s)",
            (at_most, 0.25),
            "1.07 × before ONNX Runtime (Keras in the worker)",
        )
        self.penguin_row("Penguins: Part 3 service", server.url(PENGUIN_QUERY), (at_least, 0.6))
        workshop_one = self.digit_rows("Part 3 service", server.url("/predict/"), targets=True)
        url = server.url("/predict/batch/")
        self.check_answers(url, self.batch, '"results"')
        batch = self.load(url, 1, self.batch)
        in_process, keras = facts["in_process_images_per_second"], facts["in_process_keras_images_per_second"]
        self.ratio_row(
            "5",
            f"MNIST batch of {config.batch} over HTTP: Part 3 service",
            batch.rate("images/s", config.batch),
            batch.per_second * config.batch / in_process,
            f"× in-process ONNX Runtime ({in_process:,.0f} images/s; Keras {keras:,.0f})",
            (at_least, 0.45),
            "PNG decoding alone: about 100 µs an image in the workshop's code (issue 5)",
        )
        self.inference_protocol_rows(server, workshop_one, batch)
        rss = server.peak_rss_mb()
        self.ratio_row(
            "8",
            "Peak RSS of the worker, both models loaded: Part 3 service",
            f"{rss:,.0f} MiB",
            rss / facts["import_keras_rss_mb"],
            f"× `import keras` ({facts['import_keras_rss_mb']:,.0f} MiB)",
            (at_most, 0.25),
            "1.18 × before ONNX Runtime (Keras in the worker)",
        )
        self.shadow_row(server, SHADOW_ROW)
        self.training_row(server, "Prediction p50 while a 1,000-image fine-tune runs: Part 3 service")

    def inference_protocol_rows(self, server: Server, workshop_one: Figures, workshop_batch: Figures) -> None:
        """POST /v2/models/mnist/infer, the Open Inference Protocol in JSON, against the workshop's routes."""
        config, facts = self.config, self.results.facts
        url = server.url("/v2/models/mnist/infer")
        self.check_answers(url, self.oip_one, '"label"')
        one, ratio = self.against(self.image_floor_one, url, self.oip_one, 1, self.p50_ratio)
        self.ratio_row(
            "11",
            "MNIST one image by the Open Inference Protocol (JSON): Part 3 service",
            f"{one.latency()}; {one.p50_ms / workshop_one.p50_ms:.2f} × POST /predict/'s p50",
            ratio,
            "× (2) p50",
        )
        batch = self.load(url, 1, self.oip_batch)
        images_per_second = batch.per_second * config.batch
        self.ratio_row(
            "11",
            f"MNIST batch of {config.batch} by the Open Inference Protocol (JSON): Part 3 service",
            f"{batch.rate('images/s', config.batch)}; "
            f"{images_per_second / (workshop_batch.per_second * config.batch):.2f} × POST /predict/batch/",
            images_per_second / facts["in_process_images_per_second"],
            "× in-process ONNX Runtime",
        )

    def job(self, server: Server, epochs: int, until: Callable[[dict], bool]) -> tuple[dict, float]:
        """Submit a fine-tune of data/train_img.zip; poll its job until `until(job)` or its end:
        (the job, seconds from the request's start)."""
        body, content_type = multipart(
            [("files", "train_img.zip", (DATA_DIR / "train_img.zip").read_bytes())], fields={"epochs": str(epochs)}
        )
        started = time.perf_counter()
        status, answer = http(server.url("/train/"), data=body, headers={"Content-Type": content_type})
        if status != 202:
            raise RuntimeError(f"POST /train/ answered {status}: {answer[:200]!r}")
        job_url = server.url(f"/jobs/{json.loads(answer)['id']}")
        deadline = started + 900
        while True:
            job = json.loads(http(job_url)[1])
            if until(job) or job["status"] in ("succeeded", "failed"):
                return job, time.perf_counter() - started
            if time.perf_counter() > deadline:
                raise RuntimeError(f"job {job['id']} still {job['status']} after 900 s")
            time.sleep(0.02)

    def queue_rows(self, server: Server) -> None:
        """The queue's latency with a warm trainer, and a new version's spread to two replicas."""
        facts, poll_interval = self.results.facts, 1.0  # the service's default WORKSHOP_POLL_INTERVAL
        keras = facts["import_keras_seconds"]
        port = free_port()
        with serve(
            "Part 3, a second replica",
            uvicorn("app.part3.main:app", port),
            port,
            "/health/ready",
            self.specs["part3"].env,
        ) as second:
            self.finished_job(server, 1, "the warm-up fine-tune", promoted=False)  # the trainer imports Keras once
            time.sleep(2 * poll_interval)  # idle: nothing queued, the trainer waiting on the queue
            job, seconds = self.job(server, 2, lambda job: job["epoch"] >= 1)
            self.ratio_row(
                "9",
                QUEUE_ROWS["latency"],
                f"{seconds:.2f} s",
                seconds / keras,
                f"× `import keras` ({keras:.2f} s)",
                (at_most, 0.25),
                "before the queue: more than 1 × (a new trainer process per job, issue 13)",
            )
            delays = self.serving_delays([server, second], self.finished_job(server, 2, "the fine-tune"))
            self.ratio_row(
                "9",
                QUEUE_ROWS["swap"],
                f"{max(delays):.2f} s (each replica: " + ", ".join(f"{delay:.2f} s" for delay in delays) + ")",
                max(delays) / (poll_interval + 1),
                f"× (poll_interval + 1 s) ({poll_interval + 1:g} s)",
                (at_most, 1.0),
            )

    def shadow_row(self, server: Server, name: str) -> None:
        """One digit's p50 with a challenger answering a copy of every request in shadow, against the
        same just before it came; then it is dropped, so the rows after it run without."""
        url = server.url("/predict/")
        without = self.load(url, 1, self.single)
        number = publish_challenger(self.store, "mnist")
        deadline = time.perf_counter() + 60
        while self.challenger(server).get("version") != number:
            if time.perf_counter() > deadline:
                return self.unavailable("12", [name], f"the worker did not keep version {number} as its challenger")
            time.sleep(0.1)
        with_shadow = self.load(url, 1, self.single)
        time.sleep(2)  # the scorer's last batch, and /models/'s figures (read at most once a second)
        answered = self.challenger(server).get("this_worker", {}).get("answered_rows", 0)
        status, answer = http(server.url("/models/mnist/challenger/drop"), data=b"")
        if status != 200 or not answered:
            return self.unavailable("12", [name], f"{answered} requests answered in shadow; drop answered {status}")
        self.ratio_row(
            "12",
            name,
            f"p50 {with_shadow.p50_ms:.2f} ms, p99 {with_shadow.p99_ms:.2f} ms; {answered:,} requests answered "
            "in shadow",
            with_shadow.p50_ms / without.p50_ms,
            f"× the same without ({without.p50_ms:.2f} ms)",
            (at_most, 1.2),
            "the challenger is a copy of the champion: the same model's cost, run twice",
        )

    def loop_row(self) -> None:
        """The retraining loop closing by itself, on a copy of the store (bench/loop_recovery.py)."""
        self.log("the retraining loop: penguins in bare centimetres until the policy's fine-tune serves ...")
        store = self.work / "loop-models"
        for name in ("mnist", "penguins"):
            shutil.copytree(self.store / name, store / name)
        env = {**self.specs["part3"].env, **SERVICE_ENV, "WORKSHOP_MODELS_DIR": str(store)}
        port = free_port()
        try:
            with serve("Part 3 (the loop)", uvicorn("app.part3.main:app", port), port, "/health/ready", env) as server:
                recovery = recover(server.url)
        except (RuntimeError, OSError) as error:
            return self.unavailable("13", [LOOP_ROW], str(error).splitlines()[0])
        self.ratio_row(
            "13",
            LOOP_ROW,
            f"{recovery.labels} labelled requests, {recovery.seconds:.1f} s (version {recovery.version})",
            recovery.seconds / recovery.fine_tune_seconds,
            f"× one fine-tune ({recovery.fine_tune_seconds:.1f} s)",
            None,
            "20 labelled requests a second; retraining recommended on 150 labels; the gate: "
            + recovery.gate_reason.split(";")[0],
        )

    def store_rows(self) -> None:
        """What keeping the models in object storage costs a deployment: a new version's spread to two
        replicas, and serving once the version is cached; the same measured with a local folder."""
        self.log("the model store: a local folder, then S3 (moto on loopback), two replicas each ...")
        models = sorted(path.name for path in self.store.iterdir() if path.is_dir() and path.name.isidentifier())
        folder = self.work / "store-folder"
        for name in models:
            shutil.copytree(self.store / name, folder / name)
        base = {**self.specs["part3"].env, "WORKSHOP_POLL_INTERVAL": str(STORE_POLL)}
        try:
            local_env = {**base, "WORKSHOP_MODELS_DIR": str(folder)}
            local = self.swap_delays("local folder", local_env, [{}, {}])
            with object_store(self.store, models) as s3:
                # The replicas share a folder only for the embedded queue (one machine); each its own cache.
                env = {**base, **s3, "WORKSHOP_MODELS_DIR": str(self.work / "store-s3-queue")}
                caches = [{"WORKSHOP_MODELS_CACHE": str(self.work / f"cache-{n}")} for n in range(2)]
                bucket = self.swap_delays("S3", env, caches)
                # Serving as deployed (the default poll interval), the version cached, in turns with a folder.
                served = self.serving_in_turns(local_env, {**env, **caches[0]})
        except (RuntimeError, OSError) as error:
            return self.unavailable("14", list(STORE_ROWS.values()), str(error).splitlines()[0])
        for key, delays in (("folder", local), ("bucket", bucket)):
            self.ratio_row(
                "14",
                STORE_ROWS[key],
                f"median {statistics.median(delays):.2f} s of {len(delays)} jobs ("
                + ", ".join(f"{delay:.2f}" for delay in delays)
                + ")",
                *(
                    (statistics.median(delays) / STORE_POLL, f"× the poll interval ({STORE_POLL:g} s)", None)
                    if key == "folder"
                    else (
                        statistics.median(delays) / statistics.median(local),
                        "× a local folder",
                        (at_most, 1.5),
                        "the poll's phase is uniform in 0-0.2 s; an S3 job ends later after publishing "
                        "(its tidy-up reads the store), so a replica may serve before its end",
                    )
                ),
            )
        cached, ratio, local_p50 = served
        self.ratio_row(
            "14",
            STORE_ROWS["serving"],
            cached.latency(),
            ratio,
            f"× the same with a local folder (p50 {local_p50:.2f} ms)",
            (at_most, 1.2),
            "the prediction path never touches the store; each worker polls it (4 requests a second when idle)",
        )

    def serving_in_turns(self, local: dict[str, str], bucket: dict[str, str]) -> tuple[Figures, float, float]:
        """One image at a time on a replica of each store at the default poll interval, measured in
        turns (folder, S3, ...): the S3 replica's figures, the median ratio of its p50 to the folder's,
        and the folder's median p50."""
        default = {"WORKSHOP_POLL_INTERVAL": "1.0"}
        with ExitStack() as running:
            urls = []
            for name, env in (("local folder", local), ("S3", bucket)):
                port = free_port()
                command = uvicorn("app.part3.main:app", port)
                server = running.enter_context(
                    serve(f"Part 3 ({name})", command, port, "/health/ready", {**env, **default})
                )
                urls.append(server.url("/predict/"))
                self.check_answers(urls[-1], self.single, '"result"')
            runs, ratios, local_p50 = [], [], []
            for _ in range(self.config.repeats):
                reference = self.measure(urls[0], 1, self.single)
                runs.append(self.measure(urls[1], 1, self.single))
                ratios.append(self.p50_ratio(runs[-1], reference))
                local_p50.append(reference.p50_ms)
        return Figures.of(runs), statistics.median(ratios), statistics.median(local_p50)

    def swap_delays(self, store: str, env: dict[str, str], own: list[dict[str, str]]) -> list[float]:
        """Two replicas on one store (`own`: each one's own variables): after a warm-up job, `store_jobs`
        fine-tunes; for each, the seconds from its end to both replicas serving its version."""
        with ExitStack() as running:
            replicas = []
            for n, extra in enumerate(own):
                port = free_port()
                name = f"Part 3 ({store}), replica {n + 1}"
                command = uvicorn("app.part3.main:app", port)
                replicas.append(running.enter_context(serve(name, command, port, "/health/ready", {**env, **extra})))
            self.finished_job(replicas[0], 1, "the warm-up fine-tune", promoted=False)  # the trainer imports Keras once
            jobs = (self.finished_job(replicas[n % 2], 1, "a fine-tune") for n in range(self.config.store_jobs))
            return [max(self.serving_delays(replicas, job)) for job in jobs]

    def finished_job(self, server: Server, epochs: int, what: str, promoted: bool = True) -> dict:
        """A fine-tune of data/train_img.zip run to its end; RuntimeError naming `what` unless it succeeded
        (and, with `promoted`, the gate promoted it)."""
        job, _ = self.job(server, epochs, lambda job: False)
        if job["status"] != "succeeded" or (promoted and not job.get("promoted")):
            why = job.get("error") or job.get("gate_reason")
            raise RuntimeError(f"{what} failed{' or was not promoted' if promoted else ''}: {why}")
        return job

    @staticmethod
    def serving_delays(replicas: list[Server], job: dict) -> list[float]:
        """Seconds from `job`'s end until each replica, polled in turn, serves the version it published."""
        ended = datetime.fromisoformat(job["finished_at"]).timestamp()
        delays = []
        for replica in replicas:
            while json.loads(http(replica.url("/health/ready"))[1])["models"]["mnist"] != job["version"]:
                time.sleep(0.005)
            delays.append(time.time() - ended)
        return delays

    def challenger(self, server: Server) -> dict:
        status, answer = http(server.url("/models/"))
        return (json.loads(answer)["mnist"].get("challenger") or {}) if status == 200 else {}

    def training_row(self, server: Server, name: str) -> None:
        """p50 while a fine-tune of data/train_img.zip runs, against the idle p50 just before it."""
        url = server.url("/predict/")
        idle = self.load(url, 1, self.single)
        body, content_type = self.train_zip
        status, answer = http(server.url("/train/"), data=body, headers={"Content-Type": content_type})
        if status != 202:
            return self.unavailable("7", [name], f"POST /train/ answered {status}: {answer[:200]!r}")
        job_url = server.url(f"/jobs/{json.loads(answer)['id']}")
        deadline = time.perf_counter() + 600
        while True:  # wait until the trainer is past its start-up and into its epochs
            job = json.loads(http(job_url)[1])
            if job["status"] == "running" and job["epoch"] >= self.config.finetune_wait_epochs:
                break
            if job["status"] in ("succeeded", "failed") or time.perf_counter() > deadline:
                return self.unavailable("7", [name], f"the fine-tune {job['status']} before it could be measured")
            time.sleep(0.2)
        busy = self.load(url, 1, self.single)
        job = json.loads(http(job_url)[1])
        measured = busy.latency()
        if job["status"] != "running":
            measured += " (the fine-tune ended during the window: raise finetune_epochs)"
        self.ratio_row(
            "7",
            name,
            measured,
            busy.p50_ms / idle.p50_ms,
            f"× idle p50 ({idle.p50_ms:.2f} ms)",
            (at_most, 3),
            f"trainer at epoch {job['epoch']} of {job['epochs']} when the window ended",
        )

    def other_digit_servers(self) -> None:
        connections = self.config.connections
        for key in ("kept", "workshop", "litserve", "litserve-batch"):
            if key not in self.specs:
                reason = "litserve is not installed (uv sync --group bench)"
                self.unavailable("4a", [f"MNIST one at a time: {key}"], reason)
                self.unavailable("4b", [f"MNIST {connections} connections: {key}"], reason)
                continue
            name = self.specs[key].name
            seconds = self.config.slow_seconds if key == "workshop" else self.config.seconds
            try:
                self.log(f"starting {name} ...")
                with self.serve_digits(key) as server:
                    self.digit_rows(name, server.url("/predict/"), seconds)
            except (RuntimeError, OSError) as error:
                measured = {row.name for row in self.results.rows}
                for section, row_name in (
                    ("4a", f"MNIST one at a time: {name}"),
                    ("4b", f"MNIST {connections} connections: {name}"),
                ):
                    if row_name not in measured:
                        self.unavailable(section, [row_name], str(error).splitlines()[0])


SECTION_ORDER = ["1", "2", "3", "4a", "4b", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14"]
# Rows per section: the floors, three penguin servers, five MNIST servers twice, one each, two runtimes,
# the queue's two, the Open Inference Protocol's two, shadow scoring's one, the loop's one, the object store's three.
ROWS_PER_SECTION = {
    "1": 1,
    "2": 2,
    "3": 3,
    "4a": 5,
    "4b": 5,
    "5": 1,
    "6": 1,
    "7": 1,
    "8": 1,
    "9": 2,
    "10": 2,
    "11": 2,
    "12": 1,
    "13": 1,
    "14": 3,
}


def inference_request(pixels) -> tuple[bytes, str]:
    """An Open Inference Protocol request body (JSON) for (n, 28, 28) uint8 digits."""
    tensor = {"name": "image", "shape": list(pixels.shape), "datatype": "UINT8", "data": pixels.ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode(), "application/json"


def litserve_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("litserve") is not None
