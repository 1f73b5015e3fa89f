"""Experiment 2, the paper's section 3.3: do wide Inception-ResNets die unless their residual
branches are scaled down, and does a warm-up at a low learning rate save them?

Inception-ResNet-v2 with its real wide blocks trains at residual scale 1.0 and 0.2, at the paper's
learning rate and ten times it, and unscaled with a warm-up, for several seeds. The dead-network
detector watches every run but stops none (its patience is set past the run's length), so that
each run shows what it would have done; its firing step is then read from the same checks with
the recipe's own patience. A run *died* if the features before pooling were dead (zero fraction
at or above the detector's threshold) at every check from some step to the end and it ended at
chance on its training batches; the detector *caught* a death if it fired within `patience`
checks of its start, and *fired falsely* if it fired on a run that did not die.

Written: `results.csv` (per run: outcome, death step, detector step, final training and
validation error and zero fraction), `zero_fraction.csv` (every check of every run) and
`figure.png` (zero fraction against step, and training error against epoch).
"""

import dataclasses
from pathlib import Path

from keras_inception.experiments.runs import Setting, run_setting, summary_table, write_rows
from keras_inception.plotting import plt, save
from keras_inception.training import load_recipe

NAME = "residual_scaling"
RECIPE = "paper_residual_scaling"
PAPER_LEARNING_RATE = 0.045
HIGH_LEARNING_RATE = 0.45  # ten times the paper's
LEARN_MARGIN = 0.1  # above chance by this much (top-1 accuracy) counts as having learned
OBSERVE_ONLY = "detector.patience=1000000"  # longer than any run: the detector never stops one


def _setting(scale, learning_rate, warmup_epochs=0):
    name = f"scale_{scale:g}_lr_{learning_rate:g}" + (
        f"_warmup_{warmup_epochs:g}" if warmup_epochs else ""
    )
    overrides = [
        f"model.residual_scale={scale}",
        f"optimizer.learning_rate={learning_rate}",
        OBSERVE_ONLY,
    ]
    if warmup_epochs:  # the cosine schedule is the one with a linear warm-up from 0
        overrides += ['schedule.name="cosine"', f"schedule.warmup_epochs={warmup_epochs}"]
    columns = {
        "residual_scale": scale,
        "learning_rate": learning_rate,
        "warmup_epochs": warmup_epochs,
    }
    return Setting(name, RECIPE, tuple(overrides), columns)


SETTINGS = (
    _setting(1.0, PAPER_LEARNING_RATE),
    _setting(0.2, PAPER_LEARNING_RATE),
    _setting(1.0, HIGH_LEARNING_RATE),
    _setting(0.2, HIGH_LEARNING_RATE),
    _setting(1.0, HIGH_LEARNING_RATE, warmup_epochs=1),
)


def death_step(checks, threshold):
    """The step from which every check to the end was dead, or None."""
    step = None
    for check_step, fraction in reversed(checks):
        if fraction < threshold:
            break
        step = check_step
    return step


def firing_step(checks, threshold, patience):
    """The step at which the detector, with `patience`, would have stopped the run, or None."""
    dead_in_a_row = 0
    for step, fraction in checks:
        dead_in_a_row = dead_in_a_row + 1 if fraction >= threshold else 0
        if dead_in_a_row >= patience:
            return step
    return None


def classify(result):
    """The result's row: its outcome (`died`, `learned`, `chance`, `non_finite_loss`), when it
    died, when the detector would have fired, and whether that was right."""
    # The run's own checks, judged with the patience of the recipe before OBSERVE_ONLY.
    detector = dataclasses.replace(
        result.recipe.detector, patience=load_recipe(RECIPE).detector.patience
    )
    # Learning is judged on the training batches, by the weights the detector probes: the
    # validation accuracy is the weight average's (EMA 0.99), which lags a 60-step run by most
    # of its length.
    final_accuracy = result.final("top1", validation=False)
    final_val_accuracy = result.final("top1")
    chance = 1.0 / 10
    died_at = death_step(result.checks, detector.threshold)
    fired_at = firing_step(result.checks, detector.threshold, detector.patience)
    if result.outcome == "non_finite_loss":
        outcome = "non_finite_loss"
    elif died_at is not None and not final_accuracy > chance + LEARN_MARGIN:
        outcome = "died"
    elif final_accuracy > chance + LEARN_MARGIN:
        outcome = "learned"
    else:
        outcome = "chance"
    steps = [step for step, _ in result.checks]
    caught = (
        fired_at is not None and steps.index(fired_at) - steps.index(died_at) < detector.patience
        if outcome == "died"
        else None
    )
    return {
        "setting": result.setting.name,
        **result.setting.columns,
        "seed": result.seed,
        "outcome": outcome,
        "steps": result.checks[-1][0] if result.checks else 0,
        "died_at_step": died_at if outcome == "died" else None,
        "detector_fired_at_step": fired_at,
        "detector_caught_death": caught,
        "detector_fired_falsely": fired_at is not None and outcome != "died",
        "final_zero_fraction": result.checks[-1][1] if result.checks else float("nan"),
        "final_train_top1_error": 1.0 - final_accuracy,
        "final_val_top1_error": 1.0 - final_val_accuracy,
    }


def run(output, seeds=(0, 1, 2), quick=False):
    """Train every setting for every seed and write the tables and the figure. A quick mode
    trains the last setting only (the warm-up, whose schedule is the one the others lack)."""
    output = Path(output)
    settings = SETTINGS[-1:] if quick else SETTINGS
    results = [run_setting(setting, seed, output, quick) for seed in seeds for setting in settings]
    rows = [classify(result) for result in results]
    checks = [
        {
            "setting": result.setting.name,
            "seed": result.seed,
            "step": step,
            "zero_fraction": fraction,
        }
        for result in results
        for step, fraction in result.checks
    ]
    write_rows(rows, output / "results.csv")
    write_rows(checks, output / "zero_fraction.csv")
    plot(results, output / "figure.png")
    numbers = [
        "final_train_top1_error",
        "final_val_top1_error",
        "final_zero_fraction",
        "died_at_step",
        "detector_fired_at_step",
    ]
    counts = ["outcome", "detector_caught_death", "detector_fired_falsely"]
    print(summary_table(rows, "setting", numbers, counts), end="")
    return rows


def plot(results, path):
    """Zero fraction before pooling against step, and training top-1 error (what `classify`
    judges) against epoch: one line per run, one colour per setting."""
    figure, (zeros, errors) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour_of = {setting.name: colour for setting, colour in zip(SETTINGS, colours)}
    labelled = set()
    for result in results:
        name = result.setting.name
        label = None if name in labelled else name
        labelled.add(name)
        steps, fractions = zip(*result.checks) if result.checks else ((), ())
        zeros.plot(steps, fractions, color=colour_of[name], alpha=0.8, label=label)
        errors.plot(
            result.log["epoch"],
            1.0 - result.column("top1", validation=False),
            color=colour_of[name],
            alpha=0.8,
        )
    threshold = results[0].recipe.detector.threshold
    zeros.axhline(
        threshold, color="black", linestyle=":", label=f"detector threshold {threshold:g}"
    )
    zeros.set(xlabel="optimizer step", ylabel="zero fraction before pooling", ylim=(0, 1.02))
    errors.set(xlabel="epoch", ylabel="training top-1 error", ylim=(0, 1.0))
    for axis in (zeros, errors):
        axis.grid(alpha=0.3)
    zeros.legend(fontsize="small")
    figure.suptitle("Residual scale, learning rate and the dying network (Inception-ResNet-v2)")
    return save(figure, path)
