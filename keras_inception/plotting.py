"""Training curves from run folders (loss, top-1 / top-5 accuracy, learning rate and the
dead-network detector's zero fraction against epochs, several runs overlaid), and the ROC curve
of face verification."""

import csv
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

from keras_inception.run_folder import RunFolder, atomic_path  # noqa: E402

# (panel title, metric in log.csv); each is drawn for training and, where logged, validation.
PANELS = (
    ("loss", "loss"),
    ("top-1 accuracy", "top1"),
    ("top-5 accuracy", "top5"),
    ("learning rate", "learning_rate"),
    ("zero fraction before pooling", "zero_fraction"),
)


def read_log(run_dir):
    """A run's `log.csv` as {column: list of floats}, one entry per epoch (for an epoch logged
    twice, because a run resumed after it was logged, the later row wins)."""
    with open(RunFolder(run_dir).log_file, newline="") as file:
        rows = {int(row["epoch"]): row for row in csv.DictReader(file)}
    epochs = sorted(rows)
    columns = {"epoch": [epoch + 1 for epoch in epochs]}
    for name in rows[epochs[0]] if epochs else ():
        if name != "epoch":
            columns[name] = [float(rows[epoch][name] or "nan") for epoch in epochs]
    return columns


def metric_column(log, metric, validation=False):
    """The column of `metric` (`top1`, `loss`...) in `log`, or None. Multi-output models log the
    main output's metrics under a prefix (`Logits__Logits_top1`); the first match is taken."""
    name = f"val_{metric}" if validation else metric
    if name in log:
        return log[name]
    for column, values in log.items():
        if column.endswith(f"_{metric}") and column.startswith("val_") == validation:
            return values
    return None


def plot_runs(run_dirs, output):
    """Draw the curves of `run_dirs` into the image file `output`; return the (closed) figure.

    Each run gets one colour: training solid, validation dashed; the legend names the runs.
    """
    figure, axes = plt.subplots(
        1, len(PANELS), figsize=(4 * len(PANELS), 3.6), layout="constrained"
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, run_dir in enumerate(run_dirs):
        log = read_log(run_dir)
        colour = colours[index % len(colours)]
        label = Path(run_dir).resolve().name
        for axis, (_, metric) in zip(axes, PANELS):
            for validation, style in ((False, "-"), (True, "--")):
                values = metric_column(log, metric, validation)
                if values is not None:
                    suffix = " (validation)" if validation else ""
                    axis.plot(log["epoch"], values, style, color=colour, label=label + suffix)
    for axis, (title, _) in zip(axes, PANELS):
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize="small")
    return save(figure, output)


def plot_roc(false_accepts, true_accepts, output, label=None):
    """Draw a face-verification ROC curve (true accept rate against false accept rate, the
    latter on a log axis, where verification papers read it) into `output`; return the (closed)
    figure. The axis starts at the smallest false accept rate above 0."""
    false_accepts, true_accepts = np.asarray(false_accepts), np.asarray(true_accepts)
    figure, axis = plt.subplots(figsize=(5, 4), layout="constrained")
    axis.plot(false_accepts, true_accepts, label=label)
    axis.set_xscale("log")
    positive = false_accepts[false_accepts > 0]
    axis.set_xlim(positive.min() if positive.size else 1e-4, 1.0)
    axis.set_ylim(0.0, 1.01)
    axis.set_xlabel("false accept rate (FAR)")
    axis.set_ylabel("true accept rate (VAL)")
    axis.set_title("verification ROC")
    axis.grid(alpha=0.3, which="both")
    if label:
        axis.legend(loc="lower right")
    return save(figure, output)


def save(figure, output):
    """Write `figure` to the image file `output`, never half-written (a full disk, say), and
    close it; return it."""
    try:
        with atomic_path(output) as partial:
            figure.savefig(partial, dpi=100)
    finally:
        plt.close(figure)
    return figure
