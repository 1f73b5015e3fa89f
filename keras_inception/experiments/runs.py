"""What the paper's experiments share: one training run per (setting, seed), each an ordinary run
folder trained by the recipe layer, and what it logged read back for the tables and figures.

A run that already finished (or stopped) is read, not trained again, so an interrupted
experiment picks up where it was: the same command again resumes an unfinished run from its last
epoch and skips the finished ones.
"""

import csv
import gc
import json
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from keras_inception.errors import DeadNetworkError, NonFiniteLossError
from keras_inception.models import get_network
from keras_inception.plotting import metric_column, read_log
from keras_inception.run_folder import RunFolder, atomic_path
from keras_inception.training import load_recipe, train
from keras_inception.training.recipe import Recipe

# A quick mode's run: the network at its smallest depths, enough steps to write every file an
# experiment writes, nothing more.
QUICK_OVERRIDES = (
    "training.epochs=2",
    "training.steps_per_epoch=1",
    "training.batch_size=4",
    "detector.check_every=1",
    "detector.probe_size=4",
)


@dataclass(frozen=True)
class Setting:
    """One arm of an experiment: a bundled recipe, the overrides that make the arm, and the
    columns that describe it in the results table."""

    name: str
    recipe: str
    overrides: tuple[str, ...] = ()
    columns: dict = field(default_factory=dict)

    def recipe_for(self, seed, quick=False):
        """The recipe of this setting's run with `seed` (shortened for a quick mode)."""
        overrides = [*self.overrides, f"seed={seed}"]
        if quick:
            network = get_network(load_recipe(self.recipe).model.network)
            overrides += [*QUICK_OVERRIDES, f"model.depths={list(network.min_depths)}"]
        return load_recipe(self.recipe, overrides)


@dataclass
class RunResult:
    """What one run left: the recipe it trained with, how it ended (`finished`, `dead_network`
    or `non_finite_loss`), its per-epoch log (`plotting.read_log`) and its dead-network checks as
    (step, zero fraction)."""

    setting: Setting
    seed: int
    recipe: Recipe
    folder: Path
    outcome: str
    log: dict
    checks: list

    def column(self, metric, validation=True):
        """A logged metric per epoch (`top1`, `loss`, ...) as an array (NaN where not logged)."""
        values = metric_column(self.log, metric, validation)
        return np.array(values if values is not None else [np.nan] * len(self.log["epoch"]))

    def final(self, metric, validation=True):
        """A logged metric at the run's last epoch (NaN if it logged none)."""
        values = self.column(metric, validation)
        return float(values[-1]) if values.size else float("nan")

    @property
    def steps_per_epoch(self):
        """Optimizer steps per epoch, as the run resolved them (`distribution.json`)."""
        return json.loads(RunFolder(self.folder).distribution_file.read_text())["steps_per_epoch"]


def run_setting(setting, seed, output, quick=False):
    """Train `setting` with `seed` into `output/<setting>/seed_<seed>` (or read the run already
    there) and return its `RunResult`."""
    folder = Path(output) / setting.name / f"seed_{seed}"
    recipe = setting.recipe_for(seed, quick)
    run = RunFolder(folder)
    if not run.finished and run.stop_record() is None:
        print(f"\n== {setting.name}, seed {seed}: training into {folder}", flush=True)
        try:
            train(recipe, output=folder, verbose=2)
        except (DeadNetworkError, NonFiniteLossError) as error:
            print(f"   stopped: {error}")
        finally:  # the next run starts from a clean Keras state, its memory freed
            keras.backend.clear_session()
            gc.collect()
    record = run.stop_record()
    return RunResult(
        setting=setting,
        seed=seed,
        recipe=recipe,
        folder=folder,
        outcome="finished" if record is None else record["reason"],
        log=read_log(folder) if run.log_file.exists() else {"epoch": []},
        checks=read_checks(run),
    )


def read_checks(run):
    """The dead-network checks a run logged, as a list of (step, zero fraction)."""
    if not run.zero_fraction_file.exists():
        return []
    with open(run.zero_fraction_file, newline="") as file:
        return [(int(row["step"]), float(row["zero_fraction"])) for row in csv.DictReader(file)]


def write_rows(rows, path):
    """Write a list of dicts (all with the same keys) to `path` as CSV, whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial, open(partial, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def summary_table(rows, by, numbers=(), counts=()):
    """The rows as a Markdown table, one line per value of `by` in order of appearance: the
    runs, each column in `numbers` as mean (min-max) over the runs that have a value (with how
    many did, where not all), and each column in `counts` as `value: runs` pairs."""
    groups = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    lines = [
        "| " + " | ".join([by, "runs", *numbers, *counts]) + " |",
        "|---" * (2 + len(numbers) + len(counts)) + "|",
    ]
    for key, group in groups.items():
        cells = [str(key), str(len(group))]
        for column in numbers:
            values = [float(row[column]) for row in group if row[column] is not None]
            values = [value for value in values if np.isfinite(value)]
            cell = f"{np.mean(values):.4g} ({min(values):.4g}-{max(values):.4g})" if values else "-"
            if len(values) < len(group):
                cell += f", {len(values)} of {len(group)}"
            cells.append(cell)
        for column in counts:
            tally = {}
            for row in group:
                tally[row[column]] = tally.get(row[column], 0) + 1
            cells.append(", ".join(f"{value}: {count}" for value, count in tally.items()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
