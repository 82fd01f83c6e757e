"""The lesson notebooks' pictures, and the recorder that watches an app while an experiment runs.

    info = Recorder(lambda: app.get("/info/").json())   # samples /info/ on a thread of its own
    info.mark("first GET /train/")                      # an event on the timeline
    info.wait(lambda body: body["Num of trained models"] == 2, "both trainings end")
    plot_counts(info.stop())                            # the two counts over time, with the events

Each plot function draws one figure with matplotlib and shows it (inline in a notebook).
"""

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

WAIT = 600.0  # seconds: a safety net for the slowest machine, never a measure of speed


@dataclass
class Timeline:
    samples: list[tuple[float, Any]] = field(default_factory=list)  # (seconds since the start, value)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (seconds since the start, what happened)


class Recorder:
    """Calls `probe()` every `every` seconds on a thread of its own and keeps what it returned, with the time.

    An exception in the probe (e.g. NotWrittenYet from an answer that is a TODO) stops the recording and
    is raised again by `wait` and `stop`, in the notebook's thread."""

    def __init__(self, probe: Callable[[], Any], every: float = 0.1) -> None:
        self.probe = probe
        self.every = every
        self.timeline = Timeline()
        self.started = time.monotonic()
        self.error: BaseException | None = None
        self._stopped = threading.Event()
        self._new_sample = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                value = self.probe()
            except Exception as error:  # raised again where the notebook waits
                self.error = error
                value = None
            with self._new_sample:
                if self.error is None:
                    self.timeline.samples.append((time.monotonic() - self.started, value))
                self._new_sample.notify_all()
            if self.error is not None:
                return
            self._stopped.wait(self.every)

    def latest(self, condition: Callable[[Any], bool]) -> Any:
        """The newest sample's value if it satisfies `condition`, else None (raises what stopped the recording)."""
        if self.error is not None:
            raise self.error
        value = self.last
        return value if value is not None and condition(value) else None

    @property
    def last(self) -> Any:
        return self.timeline.samples[-1][1] if self.timeline.samples else None

    def mark(self, what: str) -> None:
        self.timeline.marks.append((time.monotonic() - self.started, what))

    def wait(self, condition: Callable[[Any], bool], what: str, timeout: float = WAIT) -> Any:
        """Until a new sample satisfies `condition`; returns that sample's value."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._new_sample:
            while True:
                if self.error is not None:
                    raise self.error
                for _, value in self.timeline.samples[seen:]:
                    if condition(value):
                        return value
                seen = len(self.timeline.samples)
                if time.monotonic() > deadline or not self._thread.is_alive():
                    raise AssertionError(f"gave up waiting until {what}")
                self._new_sample.wait(timeout=1.0)

    def stop(self) -> Timeline:
        self._stopped.set()
        self._thread.join(timeout=WAIT)
        if self.error is not None:
            raise self.error
        return self.timeline


def _draw_marks(axis: Any, marks: Iterable[tuple[float, str]]) -> None:
    """A dotted line at each event, its label beside it, one below the other so that close events stay legible."""
    bottom, top = axis.get_ylim()
    marks = list(marks)
    middle = (min([when for when, _ in marks], default=0) + max(axis.get_xlim())) / 2
    for number, (when, what) in enumerate(marks):
        axis.axvline(when, color="grey", linestyle=":")
        height = top - (number + 1) * (top - bottom) * 0.09
        late = when > middle  # written to the left of its line, so that it stays inside the plot
        label = f"{what} " if late else f" {what}"
        axis.annotate(label, (when, height), fontsize=8, color="dimgrey", va="center", ha="right" if late else "left")


def plot_counts(timeline: Timeline, keys: Sequence[str], title: str) -> None:
    """Each key of the sampled JSON bodies as a step line over time, with the marked events."""
    fig, axis = plt.subplots(figsize=(9, 3.5))
    times = [when for when, _ in timeline.samples]
    for key in keys:
        axis.step(times, [body[key] for _, body in timeline.samples], where="post", label=key, linewidth=2)
    axis.set(xlabel="seconds", ylabel="count", title=title)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylim(-0.2, max([body[key] for _, body in timeline.samples for key in keys] + [1]) + 1)
    _draw_marks(axis, timeline.marks)
    axis.legend(loc="lower right")
    fig.tight_layout()
    plt.show()


def plot_lineage(panels: dict[str, Sequence[tuple[str, str | None]]], title: str) -> None:
    """Each panel: the models (name, parent) a store holds, drawn as a family tree, oldest on the left."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3), squeeze=False)
    for axis, (caption, models) in zip(axes.flat, panels.items(), strict=True):
        depth: dict[str, int] = {}
        for name, parent in models:
            depth[name] = depth.get(parent, -1) + 1 if parent is not None else 0
        rows: dict[int, int] = {}
        place = {}
        for name, _ in models:
            place[name] = (depth[name], rows.get(depth[name], 0))
            rows[depth[name]] = rows.get(depth[name], 0) + 1
        for name, parent in models:
            if parent in place:
                arrow = {"arrowstyle": "-|>", "color": "grey", "shrinkA": 18, "shrinkB": 18}  # stop at the circles
                axis.annotate("", xy=place[name], xytext=place[parent], arrowprops=arrow)
        for name, (x, y) in place.items():
            axis.scatter([x], [y], s=900, color="tab:blue", zorder=2)
            axis.text(x, y, name, ha="center", va="center", color="white", fontweight="bold", zorder=3)
        axis.set_xlim(-0.5, max(depth.values(), default=0) + 0.5)
        axis.set_ylim(max(rows.values(), default=1) - 0.5, -0.5)
        axis.set_xticks(range(max(depth.values(), default=0) + 1))
        axis.set_xlabel("trainings since the first model")
        axis.set_yticks([])
        axis.set_title(caption, fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def plot_answer_map(bills: np.ndarray, flippers: np.ndarray, answers: np.ndarray, penguins: Any, title: str) -> None:
    """The species an API answered for every (bill, flipper) on a grid, under the real penguins."""
    names = sorted(set(answers.flat) | set(penguins["species"]))
    colours = dict(zip(names, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"], strict=False))
    fig, axis = plt.subplots(figsize=(7, 5))
    for name in names:
        chosen = answers == name
        axis.scatter(bills[chosen], flippers[chosen], marker="s", s=60, alpha=0.25, color=colours[name])
    for name, group in penguins.groupby("species"):
        axis.scatter(group["bill_length_mm"], group["flipper_length_mm"], s=8, color=colours[name], label=name)
    axis.set(xlabel="bill (mm)", ylabel="flipper (mm)", title=title)
    axis.legend(loc="lower right")
    plt.show()


def plot_digits(images: Sequence[np.ndarray], captions: Sequence[str], title: str) -> None:
    """Digits in a row, each with its caption (e.g. the app's answer)."""
    fig, axes = plt.subplots(1, len(images), figsize=(1.3 * len(images), 1.9), squeeze=False)
    for axis, image, caption in zip(axes.flat, images, captions, strict=True):
        axis.imshow(image, cmap="gray_r")
        axis.set_title(caption, fontsize=10)
        axis.axis("off")
    fig.suptitle(title, y=1.05)
    plt.show()


def versions_figure(answers: Timeline, jobs: Timeline, title: str) -> Figure:
    """Top: the version that answered each prediction over time. Bottom: the job's epochs as it trains."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, height_ratios=[2, 1])
    times = [when for when, _ in answers.samples]
    versions = [version for _, version in answers.samples]
    top.scatter(times, versions, s=10, color="tab:blue")
    top.set(ylabel="version that answered", title=title)
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    running = [when for when, job in jobs.samples if job["status"] == "running"]
    for axis in (top, bottom):
        if running:
            axis.axvspan(min(running), max(running), color="orange", alpha=0.15, label="the job trains")
    epochs = [(when, job["epoch"]) for when, job in jobs.samples]
    bottom.step([when for when, _ in epochs], [epoch for _, epoch in epochs], where="post", color="tab:orange")
    bottom.set(xlabel="seconds", ylabel="epochs done")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    _draw_marks(top, answers.marks)
    if running:
        top.legend(loc="upper left")
    fig.tight_layout()
    return fig


def live_figure(draw: Callable[[], Figure], until: Callable[[], Any], every: float = 1.0, timeout: float = WAIT) -> Any:
    """Draw `draw()`'s figure, and draw it again in its place every `every` seconds, until `until()` returns
    something truthy, which it returns: a picture that grows while the experiment runs."""
    from IPython import get_ipython
    from IPython.display import display

    handle = None
    deadline = time.monotonic() + timeout
    while True:
        result = until()
        fig = draw()
        if get_ipython() is not None:
            if handle is None:
                handle = display(fig, display_id=True)
            else:
                handle.update(fig)
        plt.close(fig)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting while drawing")
        time.sleep(every)


def plot_progress(jobs: Timeline, title: str) -> None:
    """A training job's accuracy and loss after each epoch, as GET /jobs/{id} reported them while it ran."""
    reported = {}
    for _, job in jobs.samples:
        if job.get("epoch") and job.get("accuracy") is not None:
            reported[job["epoch"]] = job
    fig, (accuracy_axis, loss_axis) = plt.subplots(1, 2, figsize=(9, 3))
    epochs = sorted(reported)
    accuracy_axis.plot(epochs, [reported[e]["accuracy"] for e in epochs], marker="o", label="training")
    loss_axis.plot(epochs, [reported[e]["loss"] for e in epochs], marker="o", label="training")
    if any(reported[e].get("val_accuracy") is not None for e in epochs):
        accuracy_axis.plot(epochs, [reported[e]["val_accuracy"] for e in epochs], marker="o", label="validation")
        loss_axis.plot(epochs, [reported[e]["val_loss"] for e in epochs], marker="o", label="validation")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy")
    loss_axis.set(xlabel="epoch", ylabel="loss")
    for axis in (accuracy_axis, loss_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend()
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()
