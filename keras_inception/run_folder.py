"""The run folder: the one place that knows where a training run keeps what, and how each file is
written so that no crash leaves something a later run would wrongly trust.

    recipe.toml            the resolved recipe (re-running on this folder must match it)
    distribution.json      replicas, global batch, scaled learning rate, steps per epoch
    classes.txt            the class names, one per line, in label order
    weights.json           what the run started from (`[model] weights`): tensors loaded, heads
                           loaded and heads newly initialised
    split.csv              with `data.validation_split`: every file, its label and its split
    log.csv                one row per epoch: losses, top-1/top-5, learning rate, zero fraction
    zero_fraction.csv      every dead-network check: epoch, step, zero fraction
    tensorboard/           TensorBoard logs
    checkpoints/           the model after each epoch (`epoch_NNN.keras`, optimizer included)
    backup/                the state to resume from while the run is unfinished: the weights and
                           optimizer after the last finished epoch, and `state.json` naming them
    model.keras            the final model, holding the averaged (EMA) weights
    curves.png             the training curves
    finished.json          written last: the run is finished (nothing else says so)
    stopped.json           the run stopped (dead network, non-finite loss); re-running refuses
                           until `--restart`
    dead_network.txt       only if the detector stopped the run: why, and what to try
    last_alive.keras       only then: the model with the weights of the last healthy check
    last_good.keras        only after a non-finite loss: the weights of the last healthy check
    attempts/N/            what an earlier attempt left, moved aside by `--restart`

Every file a later run reads (models, checkpoints, the backup, plots, markers) is written under a
temporary name and renamed into place, so it is either whole or absent. The trainer, plotting and
the distribution record all find their files here, so it sits below all three. It imports
neither TensorFlow nor Keras at load, so that plotting a run stays light.
"""

import contextlib
import csv
import json
import os
import shutil
from pathlib import Path

from keras_inception import faults
from keras_inception.errors import RecipeError


@contextlib.contextmanager
def atomic_path(path, fault=None):
    """Yield a temporary path beside `path` to write to; on success rename it to `path`, so
    `path` is never half-written. On failure the temporary file is removed, and an `OSError`
    (a full disk, say) is raised again naming `path`. `fault` names the `faults` point reached
    between writing and renaming."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
    partial = path.with_name(path.name.removesuffix(suffix) + ".partial" + suffix)
    try:
        yield partial
        if fault:
            faults.reached(fault)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OSError(error.errno, f"Could not write {path}: {error.strerror or error}") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text(path, text):
    """Write `text` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as partial:
        partial.write_text(text)


class RunFolder:
    """The files of one training run in `path`."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    recipe_file = property(lambda self: self.path / "recipe.toml")
    distribution_file = property(lambda self: self.path / "distribution.json")
    classes_file = property(lambda self: self.path / "classes.txt")
    weights_file = property(lambda self: self.path / "weights.json")
    split_file = property(lambda self: self.path / "split.csv")
    log_file = property(lambda self: self.path / "log.csv")
    zero_fraction_file = property(lambda self: self.path / "zero_fraction.csv")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    backup_dir = property(lambda self: self.path / "backup")
    backup_state_file = property(lambda self: self.backup_dir / "state.json")
    model_file = property(lambda self: self.path / "model.keras")
    curves_file = property(lambda self: self.path / "curves.png")
    finished_file = property(lambda self: self.path / "finished.json")
    stopped_file = property(lambda self: self.path / "stopped.json")
    dead_network_file = property(lambda self: self.path / "dead_network.txt")
    last_alive_file = property(lambda self: self.path / "last_alive.keras")
    last_good_file = property(lambda self: self.path / "last_good.keras")
    attempts_dir = property(lambda self: self.path / "attempts")

    def checkpoint_file(self, epochs_done):
        return self.checkpoints_dir / f"epoch_{epochs_done:03d}.keras"

    # ------------------------------------------------------------------ claiming, markers

    @property
    def finished(self):
        """Whether the run finished: its marker, written after every final file, is there."""
        return self.finished_file.exists()

    def stop_record(self):
        """What `record_stop` wrote, as a dict, or None if the run did not stop."""
        if not self.stopped_file.exists():
            return None
        return json.loads(self.stopped_file.read_text())

    def check_recipe(self, recipe_text):
        """Refuse a folder that holds the run of another recipe (writing nothing)."""
        if self.recipe_file.exists() and self.recipe_file.read_text() != recipe_text:
            raise RecipeError(
                f"{self.path} holds a run of a different recipe (see {self.recipe_file}); "
                "give another output folder, the same recipe to resume that run, or --restart.",
                key="output",
            )

    def claim(self, recipe_text):
        """Write the resolved recipe here, refusing a folder that holds another recipe's run."""
        self.check_recipe(recipe_text)
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.recipe_file, recipe_text)

    def write_distribution(self, description):
        """Record the resolved distribution (`Placement.describe`) as `distribution.json`."""
        write_text(self.distribution_file, json.dumps(description, indent=2) + "\n")

    def write_data_record(self, class_names, split_files=None):
        """Record the class names (`classes.txt`) and, for a split folder, which file went where
        (`split.csv`: split, label, class, path)."""
        if class_names is not None:
            write_text(self.classes_file, "".join(f"{name}\n" for name in class_names))
        if split_files is None:
            return
        with atomic_path(self.split_file) as partial, open(partial, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["split", "label", "class", "path"])
            for split, files in split_files.items():
                for path, label in files:
                    name = class_names[label] if class_names is not None else ""
                    writer.writerow([split, label, name, path])

    def mark_finished(self, description):
        """Write the finished marker (last), then drop the backup it no longer needs."""
        write_text(self.finished_file, json.dumps(description, indent=2) + "\n")
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    def record_stop(self, reason, status, message, weights_file):
        """Mark the run stopped for `reason` (exit `status`), with what to read and to try."""
        record = {
            "reason": reason,
            "status": status,
            "message": message,
            "weights": str(weights_file),
        }
        write_text(self.stopped_file, json.dumps(record, indent=2) + "\n")

    def archive(self):
        """Move everything an earlier attempt left into `attempts/N/` (for `--restart`), so that
        no weights it kept are overwritten; return that folder, or None if there was nothing."""
        if not self.path.is_dir():
            return None
        entries = [entry for entry in self.path.iterdir() if entry != self.attempts_dir]
        if not entries:
            return None
        earlier = list(self.attempts_dir.iterdir()) if self.attempts_dir.exists() else []
        target = self.attempts_dir / str(len(earlier) + 1)
        target.mkdir(parents=True)
        for entry in entries:
            entry.rename(target / entry.name)
        return target

    # ------------------------------------------------------------------ models and the backup

    def save_model(self, model, path, fault=None):
        """`model.save(path)` atomically."""
        with atomic_path(path, fault) as partial:
            model.save(partial)

    def save_backup(self, model, epochs_done):
        """Back up the weights and optimizer after `epochs_done` epochs: the weights file under
        its own name first, then `state.json` pointing at it, then the older weights go."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        weights = self.backup_dir / f"epoch_{epochs_done:03d}.weights.h5"
        with atomic_path(weights, "backup_write") as partial:
            model.save_weights(partial)
        state = {"epochs_done": epochs_done, "weights": weights.name}
        write_text(self.backup_state_file, json.dumps(state) + "\n")
        for old in self.backup_dir.glob("epoch_*.weights.h5"):
            if old != weights:
                old.unlink()

    def epochs_done(self):
        """How many epochs the newest saved state (backup or checkpoint) had finished; 0 if none."""
        return max((epochs for epochs, _ in self._saved_states()), default=0)

    def restore(self, model, after=0):
        """Load the newest intact state saved after more than `after` epochs into `model`
        (compiled for the phase that state belongs to) and return how many epochs it had finished
        (`after` when there is none). The backup comes first; if it cannot be read, the newest
        checkpoint that can, saying so. The logs are cut back to that epoch, so that each epoch
        appears in them once."""
        for partial in self.path.rglob("*.partial*"):  # what a killed write left
            partial.unlink()
        candidates = [(epochs, path) for epochs, path in self._saved_states() if epochs > after]
        if not candidates:
            return after
        model.optimizer.build(model.trainable_variables)
        for index, (epochs_done, path) in enumerate(candidates):
            try:
                model.load_weights(path)
            except Exception as error:  # any unreadable file: try the next one
                print(f"Cannot resume from {path} ({type(error).__name__}: {error}); trying older.")
                continue
            if index:
                print(f"Resumed from {path}, after epoch {epochs_done}.")
            _cut_log(self.log_file, "epoch", below=epochs_done)
            _cut_log(self.zero_fraction_file, "epoch", below=epochs_done)
            return epochs_done
        raise OSError(f"No backup or checkpoint in {self.path} can be read to resume from.")

    def _saved_states(self):
        """(epochs done, file) of the backup, then of each checkpoint, newest first."""
        states = []
        if self.backup_state_file.exists():
            state = json.loads(self.backup_state_file.read_text())
            states.append((state["epochs_done"], self.backup_dir / state["weights"]))
        checkpoints = sorted(self.checkpoints_dir.glob("epoch_*.keras"), reverse=True)
        return states + [
            (int(path.stem.removeprefix("epoch_")), path)
            for path in checkpoints
            if ".partial" not in path.name  # what a killed write left
        ]


def _cut_log(path, column, below):
    """Keep only the rows of the CSV file `path` whose `column` is below `below`."""
    if not path.exists():
        return
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        fields = reader.fieldnames
    kept = [row for row in rows if int(row[column]) < below]
    if not fields or len(kept) == len(rows):
        return
    with atomic_path(path) as partial, open(partial, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
