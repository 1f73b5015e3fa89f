"""Crash safety: a run killed at each dangerous moment, then re-run with the same command, ends
as an uninterrupted run does; a full disk, a NaN loss or a stopped run never pass for success."""

import errno
import shutil
import signal
import types

import helpers
import keras
import numpy as np
import pytest

import keras_inception_cli as cli
from keras_inception.errors import NonFiniteLossError, StoppedRunError
from keras_inception.run_folder import RunFolder
from keras_inception.training import load_recipe, train

# The quickstart through the command line, shortened to 4 epochs of 2 steps of 8, deterministic
# ops, on two of the digits (each epoch ends on a fifth of the validation images).
SHORT = [
    "model.depths=[0, 0, 1]",
    'data.classes=["0", "1"]',
    "training.batch_size=8",
    "training.epochs=4",
    "training.steps_per_epoch=2",
    "training.deterministic=true",
    "detector.check_every=2",
    "detector.probe_size=8",
]
# One run killed in each window in turn, each time started again with the same command: mid-epoch
# (the second epoch's first step), an epoch's checkpoint write (its log row written, its backup
# not), a backup write, after fit returns and during the final save; then left to finish. Each
# kill falls in the epoch after the one that start resumed in, so that every start also trains
# and saves an epoch for the next to resume from (a fresh run per window took twice as long).
# With each window, the epochs that start must begin: it resumes, never starts over.
CHAIN = [
    ("batch_end:3", [1, 2]),
    ("checkpoint_write:2", [2, 3]),
    ("backup_write:2", [3, 4]),
    ("after_fit", [4]),
    ("final_write", []),
    (None, []),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The uninterrupted run and, beside it, the run killed in each window of CHAIN in turn,
    with each of its starts and a copy of its folder as the kill after fit left it."""
    root = tmp_path_factory.mktemp("runs")
    whole = helpers.start_training(SHORT, root / "whole", root / "whole.log")
    killed, starts = root / "killed", []
    for index, (kill_at, _) in enumerate(CHAIN):
        starts.append(helpers.train_in_a_process(SHORT, killed, root / f"{index}.log", kill_at))
        if kill_at == "after_fit":
            shutil.copytree(killed, root / "killed_after_fit")
    assert whole.wait(timeout=900) == 0, (root / "whole.log").read_text()[-2000:]
    return types.SimpleNamespace(
        whole=root / "whole",
        killed=killed,
        starts=starts,
        killed_after_fit=root / "killed_after_fit",
    )


def logged_epochs(run_dir):
    return list(np.genfromtxt(run_dir / "log.csv", delimiter=",", names=True, ndmin=1)["epoch"])


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_run_killed_in_each_window_resumes_to_the_uninterrupted_result(runs):
    for started, (kill_at, epochs) in zip(runs.starts, CHAIN, strict=True):
        assert started.status == (-signal.SIGKILL if kill_at else 0), (kill_at, started.output)
        assert started.epochs == epochs, kill_at
        assert started.finished == (kill_at is None), kill_at

    run = RunFolder(runs.killed)
    assert not run.backup_dir.exists() and not list(run.path.rglob("*.partial*"))
    assert logged_epochs(run.path) == logged_epochs(runs.whole) == [0, 1, 2, 3]
    helpers.assert_same_final_weights(run.path, runs.whole)


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
@pytest.mark.subprocess
def test_a_damaged_backup_falls_back_to_the_newest_intact_checkpoint(runs, tmp_path, capsys):
    run = RunFolder(shutil.copytree(runs.killed_after_fit, tmp_path / "damaged"))
    (backup,) = run.backup_dir.glob("*.weights.h5")
    backup.write_bytes(b"\0" * 100)  # a disk that lost the last write

    train(load_recipe("quickstart", SHORT), output=run.path)
    assert f"Cannot resume from {backup}" in capsys.readouterr().out
    assert run.finished and logged_epochs(run.path) == [0, 1, 2, 3]
    helpers.assert_same_final_weights(run.path, runs.whole)


def test_a_run_that_fails_its_checks_writes_nothing_into_its_folder(tmp_path):
    output = tmp_path / "run"
    bad = [*SHORT, 'data.source="folder"', f'data.train="{tmp_path / "no_such_folder"}"']
    with pytest.raises(ValueError, match="no_such_folder"):
        train(load_recipe("quickstart", bad), output=output)
    assert not output.exists()
