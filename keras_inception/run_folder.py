"""The run folder: the one place that knows where a training run keeps what.

    recipe.toml            the resolved recipe (re-running on this folder must match it)
    distribution.json      replicas, global batch, scaled learning rate, steps per epoch
    log.csv                one row per epoch: losses, top-1/top-5, learning rate, zero fraction
    zero_fraction.csv      every dead-network check: optimizer step, zero fraction
    tensorboard/           TensorBoard logs
    checkpoints/           the model after each epoch (`epoch_NNN.keras`, optimizer included)
    backup/                Keras's BackupAndRestore state while a run is unfinished
    model.keras            the final model, holding the averaged (EMA) weights
    curves.png             the training curves
    dead_network.txt       only if the detector stopped the run: why, and what to try
    last_alive.keras       only then: the model with the weights of the last healthy check

The trainer, plotting and the distribution record all find their files here, so it sits below
all three. It imports neither TensorFlow nor Keras at load, so that plotting a run stays light.
"""

import json
from pathlib import Path

from keras_inception.errors import RecipeError


class RunFolder:
    """The files of one training run in `path`."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    recipe_file = property(lambda self: self.path / "recipe.toml")
    distribution_file = property(lambda self: self.path / "distribution.json")
    log_file = property(lambda self: self.path / "log.csv")
    zero_fraction_file = property(lambda self: self.path / "zero_fraction.csv")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    backup_dir = property(lambda self: self.path / "backup")
    model_file = property(lambda self: self.path / "model.keras")
    curves_file = property(lambda self: self.path / "curves.png")
    dead_network_file = property(lambda self: self.path / "dead_network.txt")
    last_alive_file = property(lambda self: self.path / "last_alive.keras")

    @property
    def finished(self):
        """Whether the run has saved its final model."""
        return self.model_file.exists()

    def claim(self, recipe_text):
        """Write the resolved recipe here, refusing a folder that holds another recipe's run."""
        if self.recipe_file.exists() and self.recipe_file.read_text() != recipe_text:
            raise RecipeError(
                f"{self.path} holds a run of a different recipe (see {self.recipe_file}); "
                "give another output folder, or the same recipe to resume that run.",
                key="output",
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.recipe_file.write_text(recipe_text)

    def write_distribution(self, description):
        """Record the resolved distribution (`Placement.describe`) as `distribution.json`."""
        self.distribution_file.write_text(json.dumps(description, indent=2) + "\n")

    def callbacks(self):
        """Logging, checkpoints and the backup. BackupAndRestore comes last so that on resume it
        restores before training starts and, at each epoch end, backs up after the log is written
        (a kill in between repeats a log row rather than losing one)."""
        import keras

        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        return [
            keras.callbacks.CSVLogger(self.log_file, append=True),
            keras.callbacks.TensorBoard(self.tensorboard_dir),
            keras.callbacks.ModelCheckpoint(self.checkpoints_dir / "epoch_{epoch:03d}.keras"),
            keras.callbacks.BackupAndRestore(self.backup_dir),
        ]
