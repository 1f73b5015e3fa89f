"""Crash safety: a run killed at each dangerous moment, then re-run with the same command, ends
as an uninterrupted run does; a full disk, a NaN loss or a stopped run never pass for success."""

import errno
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_inception_cli as cli
from keras_inception import faults
from keras_inception.errors import NonFiniteLossError, StoppedRunError
from keras_inception.run_folder import RunFolder
from keras_inception.training import load_recipe, train

# The quickstart through the command line, shortened to 2 epochs of 2 steps, deterministic ops.
SHORT = [
    "model.depths=[0, 0, 1]",
    "training.batch_size=16",
    "training.epochs=2",
    "training.steps_per_epoch=2",
    "training.deterministic=true",
    "detector.check_every=2",
    "detector.probe_size=8",
]
COMMAND = [
    sys.executable,
    "-m",
    "keras_inception_cli",
    "train",
    "quickstart",
    *[f"--set={override}" for override in SHORT],
]
# Each window, as the point and the time it is reached: mid-epoch (the second epoch's first step),
# the second epoch's checkpoint write (its log row written, its backup not) and backup write,
# after fit returns, and during the final save; and the epochs the re-run must train (it
# resumes, never starts over).
WINDOWS = {
    "batch_end:3": ["Epoch 2/2"],
    "checkpoint_write:2": ["Epoch 2/2"],
    "backup_write:2": ["Epoch 2/2"],
    "after_fit": [],
    "final_write": [],
}


def start(run_dir, kill_at=None):
    env = {key: value for key, value in os.environ.items() if key != faults.ENVIRONMENT_VARIABLE}
    if kill_at:
        env[faults.ENVIRONMENT_VARIABLE] = kill_at
    return subprocess.Popen(
        [*COMMAND, "--output", str(run_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def final_weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras", compile=False).get_weights()


def logged_epochs(run_dir):
    return list(np.genfromtxt(run_dir / "log.csv", delimiter=",", names=True, ndmin=1)["epoch"])


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_run_killed_in_each_window_resumes_to_the_uninterrupted_result(tmp_path):
    whole = tmp_path / "whole"
    killed = {window: tmp_path / window.replace(":", "_") for window in WINDOWS}
    runs = [start(whole)] + [start(path, window) for window, path in killed.items()]
    finished = [run.communicate(timeout=900) for run in runs]
    statuses = [run.returncode for run in runs]
    assert statuses == [0] + [-9] * len(WINDOWS), [errors[-2000:] for _, errors in finished]
    for window, path in killed.items():
        assert not RunFolder(path).finished, window
    reruns = {window: start(path) for window, path in killed.items()}
    for window, run in reruns.items():
        output, errors = run.communicate(timeout=900)
        assert run.returncode == 0, (window, errors[-2000:])
        assert [line for line in ("Epoch 1/2", "Epoch 2/2") if line in output] == WINDOWS[window]

    expected = final_weights(whole)
    for window, path in killed.items():
        assert RunFolder(path).finished and not (path / "backup").exists(), window
        assert logged_epochs(path) == logged_epochs(whole) == [0, 1], window
        for ours, theirs in zip(final_weights(path), expected, strict=True):
            np.testing.assert_array_equal(ours, theirs, err_msg=window)
        assert not list(path.rglob("*.partial*")), window


@pytest.mark.slow
def test_a_full_disk_names_the_file_and_leaves_nothing_a_later_run_trusts(tmp_path, monkeypatch):
    recipe = load_recipe("quickstart", [*SHORT, "training.epochs=1"])
    saves = []

    def full_disk(model, filepath, *args, **kwargs):
        saves.append(str(filepath))
        with open(filepath, "wb") as file:
            file.write(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)
    with pytest.raises(OSError, match=r"epoch_001\.keras.*No space left"):
        train(recipe, output=tmp_path / "run")
    run = RunFolder(tmp_path / "run")
    assert saves and not run.finished and not list(run.path.rglob("*.keras"))
    assert not list(run.path.rglob("*.partial*"))


@pytest.mark.slow
def test_a_nan_run_fails_keeps_its_last_good_weights_and_is_not_restarted_silently(
    tmp_path, capsys
):
    output = str(tmp_path / "run")
    overrides = [f"--set={o}" for o in [*SHORT, "optimizer.learning_rate=1e30"]]
    status = cli.main(["train", "quickstart", *overrides, "--output", output])
    assert status == cli.NON_FINITE_STATUS
    message = capsys.readouterr().err
    assert "optimizer step" in message and "learning_rate" in message
    run = RunFolder(output)
    assert not run.finished and not run.model_file.exists() and run.last_good_file.exists()
    weights = keras.saving.load_model(run.last_good_file, compile=False).get_weights()
    assert all(np.isfinite(w).all() for w in weights)

    before = run.last_good_file.read_bytes()
    assert cli.main(["train", "quickstart", *overrides, "--output", output]) == status
    assert "--restart" in capsys.readouterr().err and run.last_good_file.read_bytes() == before
    with pytest.raises(StoppedRunError):
        train(load_recipe("quickstart", [*SHORT, "optimizer.learning_rate=1e30"]), output=output)
    with pytest.raises(NonFiniteLossError):
        train(
            load_recipe("quickstart", [*SHORT, "optimizer.learning_rate=1e30"]),
            output=output,
            restart=True,
        )
    assert (run.attempts_dir / "1" / "last_good.keras").read_bytes() == before


@pytest.mark.slow
def test_a_damaged_backup_falls_back_to_the_newest_intact_checkpoint(tmp_path, monkeypatch, capsys):
    recipe = load_recipe("quickstart", SHORT)
    train(recipe, output=tmp_path / "whole")

    class Died(Exception):
        """The process dies after fit returns, before the final save."""

    def die_after_fit(point):
        if point == "after_fit":
            raise Died

    monkeypatch.setattr(faults, "reached", die_after_fit)
    with pytest.raises(Died):
        train(recipe, output=tmp_path / "damaged")
    run = RunFolder(tmp_path / "damaged")
    (backup,) = run.backup_dir.glob("*.weights.h5")
    backup.write_bytes(b"\0" * 100)  # a disk that lost the last write

    monkeypatch.undo()
    train(recipe, output=run.path)
    assert f"Cannot resume from {backup}" in capsys.readouterr().out
    assert run.finished and logged_epochs(run.path) == [0, 1]
    for ours, theirs in zip(
        final_weights(run.path), final_weights(tmp_path / "whole"), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


def test_a_run_that_fails_its_checks_writes_nothing_into_its_folder(tmp_path):
    output = tmp_path / "run"
    bad = [*SHORT, 'data.source="folder"', f'data.train="{tmp_path / "no_such_folder"}"']
    with pytest.raises(ValueError, match="no_such_folder"):
        train(load_recipe("quickstart", bad), output=output)
    assert not output.exists()
