"""Experiment 1, the paper's Figures 11-16 at small scale: do residual connections make an
Inception network train faster at the same cost?

Inception-v4 and Inception-ResNet-v2, with depths that make their forward FLOPs equal within 10%
(`flop_ratio`), train with the same recipe on the same digits for several seeds. Written:
`curves.csv` (validation error per epoch, step and second of every run), `results.csv` (per run:
the final error, the steps and seconds each reached `ACCURACY_TARGETS`, and the seconds of the
first epoch, which holds the tracing, against the median of the others) and `figure.png`
(validation error against epoch and against wall-clock, mean and spread over the seeds).
"""

from pathlib import Path

import numpy as np

from keras_inception.experiments.runs import Setting, run_setting, summary_table, write_rows
from keras_inception.models.flops import forward_flops
from keras_inception.plotting import plt, save
from keras_inception.training import build_model

NAME = "residual_speedup"
SETTINGS = (
    Setting("inception_v4", "paper_speedup_inception_v4", columns={"residual": False}),
    Setting("inception_resnet_v2", "paper_speedup_inception_resnet_v2", columns={"residual": True}),
)
# Validation top-1 accuracies to count steps and seconds to. Set after the first full run to the
# range these short runs reach (none reached 0.8 in 8 epochs; docs/paper.md).
ACCURACY_TARGETS = (0.3, 0.5, 0.6)
MAX_FLOP_MISMATCH = 0.10  # the "forward FLOPs matched within 10%"


def setting_flops(setting, num_classes=10):
    """Forward FLOPs per image of a setting's network, built as its recipe builds it."""
    return forward_flops(build_model(setting.recipe_for(0).model, num_classes))


def flop_ratio():
    """FLOPs of the residual arm over those of the plain one."""
    plain, residual = (setting_flops(setting) for setting in SETTINGS)
    return residual / plain


def first_and_later_epochs(epoch_seconds):
    """Seconds of the first epoch, which holds the tracing, and the median of the later ones,
    which is what a step costs."""
    if epoch_seconds.size < 2:
        return {"first_epoch_seconds": float("nan"), "later_epoch_seconds_median": float("nan")}
    return {
        "first_epoch_seconds": round(float(epoch_seconds[0]), 1),
        "later_epoch_seconds_median": round(float(np.median(epoch_seconds[1:])), 1),
    }


def run(output, seeds=(0, 1, 2), quick=False):
    """Train every setting for every seed (seeds in the outer loop, so that a machine busy with
    something else slows both networks alike) and write the tables and the figure."""
    output = Path(output)
    flops = {setting.name: setting_flops(setting) for setting in SETTINGS}
    results = [run_setting(setting, seed, output, quick) for seed in seeds for setting in SETTINGS]
    curves, summary = [], []
    for result in results:
        error = 1.0 - result.column("top1")
        steps = np.array(result.log["epoch"]) * result.steps_per_epoch
        epoch_seconds = result.column("epoch_seconds", validation=False)
        seconds = np.cumsum(epoch_seconds)
        curves += [
            {
                "network": result.setting.name,
                "seed": result.seed,
                "epoch": epoch,
                "step": int(step),
                "seconds": round(float(second), 2),
                "val_top1_error": float(value),
            }
            for epoch, step, second, value in zip(result.log["epoch"], steps, seconds, error)
        ]
        row = {
            "network": result.setting.name,
            **result.setting.columns,
            "depths": "/".join(map(str, result.recipe.model.depths)),
            "gflops": round(flops[result.setting.name] / 1e9, 4),
            "seed": result.seed,
            "outcome": result.outcome,
            "final_val_top1_error": 1.0 - result.final("top1"),
            "seconds": round(float(seconds[-1]), 1) if seconds.size else float("nan"),
            **first_and_later_epochs(epoch_seconds),
        }
        for target in ACCURACY_TARGETS:
            reached = np.flatnonzero(1.0 - error >= target)
            first = reached[0] if reached.size else None
            row[f"steps_to_{target:g}"] = None if first is None else int(steps[first])
            row[f"seconds_to_{target:g}"] = (
                None if first is None else round(float(seconds[first]), 1)
            )
        summary.append(row)
    write_rows(curves, output / "curves.csv")
    write_rows(summary, output / "results.csv")
    plot(curves, output / "figure.png")
    numbers = [
        "final_val_top1_error",
        "seconds",
        "first_epoch_seconds",
        "later_epoch_seconds_median",
    ]
    numbers += [
        f"{kind}_to_{target:g}" for target in ACCURACY_TARGETS for kind in ("steps", "seconds")
    ]
    print(summary_table(summary, "network", numbers), end="")
    return summary


def plot(curves, path):
    """Validation top-1 error against epoch (mean over seeds, min-max band) and against
    wall-clock seconds (one line per run)."""
    figure, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, setting in zip(colours, SETTINGS):
        rows = [row for row in curves if row["network"] == setting.name]
        seeds = sorted({row["seed"] for row in rows})
        runs = [[row for row in rows if row["seed"] == seed] for seed in seeds]
        length = min(len(run) for run in runs)
        errors = np.array([[row["val_top1_error"] for row in run[:length]] for run in runs])
        epochs = [row["epoch"] for row in runs[0][:length]]
        label = f"{setting.name} ({len(seeds)} seeds)"
        by_epoch.plot(epochs, errors.mean(axis=0), color=colour, label=label)
        by_epoch.fill_between(
            epochs, errors.min(axis=0), errors.max(axis=0), color=colour, alpha=0.2
        )
        for index, run in enumerate(runs):
            by_time.plot(
                [row["seconds"] for row in run],
                [row["val_top1_error"] for row in run],
                color=colour,
                alpha=0.8,
                label=setting.name if index == 0 else None,
            )
    for axis, xlabel in ((by_epoch, "epoch"), (by_time, "wall-clock seconds")):
        axis.set_xlabel(xlabel)
        axis.set_ylabel("validation top-1 error")
        axis.set_yscale("log")
        axis.grid(alpha=0.3, which="both")
        axis.legend()
    figure.suptitle("Residual connections and training speed at matched FLOPs (digits, 75x75)")
    return save(figure, path)
