"""The command line: `train`, `plot` and `recipes` end to end on the quickstart recipe, and a
start-up that is fast and quiet."""

import os
import subprocess
import sys

import numpy as np
import pytest

import keras_inception_cli as cli


def cli_commands():
    """The subcommands' names, read from the parser."""
    parser = cli.argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    for add_subcommand in cli.SUBCOMMANDS:
        add_subcommand(subparsers)
    return list(subparsers.choices)


SHORT = [
    "--set",
    "training.epochs=2",
    "--set",
    "training.steps_per_epoch=3",
    "--set",
    "detector.check_every=2",
]


@pytest.mark.subprocess
def test_recipes_lists_one_line_each():
    result = subprocess.run(
        ["keras-inception", "recipes"], capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "digits_0_4",
        "digits_5_9",
        "finetune_inception_resnet_v2",
        "finetune_inception_v4",
        "inception_resnet_v1_imagenet",
        "inception_resnet_v2_imagenet",
        "inception_v4_imagenet",
        "paper_residual_scaling",
        "paper_speedup_inception_resnet_v2",
        "paper_speedup_inception_v4",
        "quickstart",
    ]


@pytest.mark.slow
def test_shortened_quickstart_trains_end_to_end_and_stays_alive(tmp_path, capsys):
    run = tmp_path / "quickstart"
    assert cli.main(["train", "quickstart", *SHORT, "--output", str(run)]) == 0
    for name in (
        "recipe.toml",
        "log.csv",
        "zero_fraction.csv",
        "model.keras",
        "curves.png",
        "tensorboard",
    ):
        assert (run / name).exists(), name
    assert len(list((run / "checkpoints").glob("epoch_*.keras"))) == 2
    log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
    assert list(log["epoch"]) == [0, 1]
    assert set(log.dtype.names) >= {
        "loss",
        "top1",
        "top5",
        "val_top1",
        "learning_rate",
        "zero_fraction",
    }
    # The detector checked every 2 steps and found a healthy network: no stop, no message.
    checks = np.loadtxt(run / "zero_fraction.csv", delimiter=",", skiprows=1, ndmin=2)
    assert list(checks[:, 1]) == [2, 4, 6]
    assert (checks[:, 2] < 0.99).all()
    assert not (run / "dead_network.txt").exists()
    assert "Finished" in capsys.readouterr().out

    # The same command again: the run is finished, nothing is retrained or overwritten.
    saved = (run / "model.keras").stat().st_mtime_ns
    assert cli.main(["train", "quickstart", *SHORT, "--output", str(run)]) == 0
    assert "already holds a finished run" in capsys.readouterr().out
    assert (run / "model.keras").stat().st_mtime_ns == saved

    # Another recipe on the same folder is refused, naming the folder.
    assert cli.main(["train", "quickstart", *SHORT, "--set", "seed=1", "--output", str(run)]) == 1
    assert "different recipe" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_the_detector_stops_exits_non_zero_with_the_reason(tmp_path, capsys):
    # A threshold this low calls any ReLU output dead: the detector's path through the command
    # (on a smaller network, batch: what it finds does not depend on them).
    run = tmp_path / "dead"
    command = [
        "train",
        "quickstart",
        *SHORT,
        "--set",
        "model.depths=[0, 0, 1]",
        "--set",
        "training.batch_size=8",
        "--set",
        "detector.threshold=1e-9",
        "--set",
        "detector.patience=1",
        "--output",
        str(run),
    ]
    status = cli.main(command)
    assert status == cli.DEAD_NETWORK_STATUS
    error = capsys.readouterr().err
    assert "Dead network: at step 2" in error and "residual scale" in error
    assert (run / "dead_network.txt").read_text().strip() in error
    assert (run / "last_alive.keras").exists() and not (run / "model.keras").exists()

    # Run again (as a scheduler retrying a failed job would): refused, the healthy weights kept.
    kept = (run / "last_alive.keras").read_bytes()
    assert cli.main(command) == cli.DEAD_NETWORK_STATUS
    error = capsys.readouterr().err
    assert "--restart" in error and "last_alive.keras" in error
    assert (run / "last_alive.keras").read_bytes() == kept


def test_bad_override_names_the_key(capsys):
    assert cli.main(["train", "quickstart", "--set", "optimizer.learning_rate=-1"]) == 1
    assert "optimizer.learning_rate" in capsys.readouterr().err


def test_plot_writes_a_png_of_several_runs(tmp_path):
    for name, loss in (("a", 2.0), ("b", 1.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.csv").write_text(
            f"epoch,loss,top1\n0,{loss},0.1\n1,{loss - 1},0.2\n"
        )
    output = tmp_path / "both.png"
    assert cli.main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(output)]) == 0
    assert output.read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["plot", str(tmp_path / "missing"), "-o", str(output)]) == 1


@pytest.mark.subprocess
@pytest.mark.parametrize("command", [[], *[[name] for name in cli_commands()]])
def test_help_starts_in_under_a_second_without_tensorflow(command):
    script = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "import keras_inception_cli\n"
        "try:\n"
        f"    keras_inception_cli.main({command + ['--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(time.perf_counter() - start)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    seconds, loaded = result.stdout.splitlines()[-2:]
    assert loaded == "[]"
    assert float(seconds) < 1.0
    assert "usage: keras-inception" in result.stdout


@pytest.mark.subprocess
def test_tensorflows_start_up_lines_show_only_with_verbose():
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet, verbose = (
        subprocess.run(
            ["keras-inception", "networks", *flag],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        )
        for flag in ([], ["--verbose"])
    )
    assert quiet.stdout == verbose.stdout and "inception_v4" in quiet.stdout
    assert quiet.stderr == ""
    assert verbose.stderr.strip(), "TensorFlow printed nothing to hold back on this machine"
