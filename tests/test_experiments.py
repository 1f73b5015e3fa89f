"""The paper's experiments: the FLOP matching of the speed-up arms, how the scaling experiment
judges a death and the detector, and each experiment end to end in its quick mode."""

import csv

import numpy as np
import pytest

import keras_inception_cli as cli
from keras_inception.experiments import crops_ensembles, residual_scaling, residual_speedup
from keras_inception.experiments.runs import RunResult
from keras_inception.models import get_network
from keras_inception.models.flops import forward_flops
from keras_inception.training import build_model, load_recipe


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_speedup_arms_match_forward_flops_within_ten_percent():
    plain, residual = residual_speedup.SETTINGS
    models = [build_model(setting.recipe_for(0).model, 10) for setting in (plain, residual)]
    assert not get_network(plain.recipe_for(0).model.network).residual
    assert get_network(residual.recipe_for(0).model.network).residual
    flops = [forward_flops(model) for model in models]
    assert abs(flops[1] / flops[0] - 1) <= residual_speedup.MAX_FLOP_MISMATCH
    assert residual_speedup.flop_ratio() == pytest.approx(flops[1] / flops[0])


def test_scaling_settings_cover_scales_rates_beyond_the_papers_and_a_warm_up():
    columns = [setting.columns for setting in residual_scaling.SETTINGS]
    assert {c["residual_scale"] for c in columns} >= {1.0, 0.2}
    assert max(c["learning_rate"] for c in columns) > residual_scaling.PAPER_LEARNING_RATE
    warm = [s for s in residual_scaling.SETTINGS if s.columns["warmup_epochs"]]
    recipe = warm[0].recipe_for(0)
    assert recipe.schedule.warmup_epochs > 0 and recipe.model.residual_scale == 1.0
    # The C block keeps its real width: the up-projection that the paper saw die.
    model = build_model(recipe.model, 10)
    widths = [getattr(layer, "filters", 0) for layer in model.layers if "Block8" in layer.name]
    assert 2080 in widths


def test_death_step_is_where_the_features_stay_dead_to_the_end():
    checks = [(10, 0.5), (20, 1.0), (30, 0.6), (40, 0.995), (50, 1.0), (60, 1.0)]
    assert residual_scaling.death_step(checks, 0.99) == 40
    assert residual_scaling.death_step(checks[:3], 0.99) is None
    assert residual_scaling.firing_step(checks, 0.99, patience=3) == 60
    assert residual_scaling.firing_step(checks, 0.99, patience=1) == 20
    assert residual_scaling.firing_step(checks[:4], 0.99, patience=2) is None


def _result(setting, checks, top1, outcome="finished"):
    # The weight average lags: validation sits at chance whatever the training batches say.
    log = {
        "epoch": list(range(1, len(top1) + 1)),
        "top1": list(top1),
        "val_top1": [0.1] * len(top1),
    }
    recipe = setting.recipe_for(0)
    return RunResult(setting, 0, recipe, None, outcome, log, checks)


@pytest.mark.parametrize(
    "checks, top1, outcome, caught, false_alarm",
    [
        # Dead from step 30 on and at chance: the detector (patience 3) fires at step 50.
        ([(10, 0.5), (20, 0.5), (30, 1.0), (40, 1.0), (50, 1.0)], [0.3, 0.1], "died", True, False),
        # Silent for three checks, then alive again and learning: a false alarm.
        ([(10, 1.0), (20, 1.0), (30, 1.0), (40, 0.4)], [0.2, 0.9], "learned", None, True),
        # Alive throughout, but never above chance.
        ([(10, 0.5), (20, 0.5)], [0.1, 0.12], "chance", None, False),
    ],
)
def test_a_run_is_judged_from_its_checks_and_its_accuracy(
    checks, top1, outcome, caught, false_alarm
):
    setting = residual_scaling.SETTINGS[0]
    row = residual_scaling.classify(_result(setting, checks, top1))
    assert row["outcome"] == outcome
    assert row["detector_caught_death"] is caught
    assert row["detector_fired_falsely"] is false_alarm
    assert row["final_train_top1_error"] == pytest.approx(1 - top1[-1])
    assert row["final_val_top1_error"] == pytest.approx(0.9)


def test_the_observing_detector_never_stops_a_scaling_run():
    recipe = residual_scaling.SETTINGS[0].recipe_for(0)
    checks = recipe.training.epochs * recipe.training.steps_per_epoch // recipe.detector.check_every
    assert recipe.detector.patience > checks
    assert load_recipe(residual_scaling.RECIPE).detector.patience < checks


def test_an_unknown_experiment_is_refused_by_name(capsys):
    assert cli.main(["experiment", "residual_sppedup", "--quick"]) == cli.BAD_INPUT_STATUS
    error = capsys.readouterr().err
    assert "residual_sppedup" in error and "residual_speedup" in error


@pytest.mark.slow
def test_speedup_and_crops_experiments_run_end_to_end_in_quick_mode(tmp_path):
    output = tmp_path / "experiments"
    assert (
        cli.main(
            [
                "experiment",
                "crops_ensembles",
                "--quick",
                "--seeds",
                "0",
                "--output",
                str(output / "crops_ensembles"),
            ]
        )
        == 0
    )
    speedup = output / "residual_speedup"
    summary = read_csv(speedup / "results.csv")
    assert [row["network"] for row in summary] == ["inception_v4", "inception_resnet_v2"]
    assert {"gflops", "final_val_top1_error", "steps_to_0.5", "later_epoch_seconds_median"} <= set(
        summary[0]
    )
    curves = read_csv(speedup / "curves.csv")
    assert len(curves) == 2 * 2  # two networks, two epochs each
    assert [int(row["step"]) for row in curves[:2]] == [1, 2]
    assert np.all(np.diff([float(row["seconds"]) for row in curves[:2]]) > 0)
    crops = read_csv(output / "crops_ensembles" / "results.csv")
    assert [(row["model"], row["crops"]) for row in crops[:4]] == [
        ("inception_v4_seed_0", scheme) for scheme in crops_ensembles.CROPS
    ]
    members = ["inception_v4_seed_0", "inception_resnet_v2_seed_0"]
    assert list(dict.fromkeys(row["model"] for row in crops)) == [*members, " + ".join(members)]
    assert all(int(row["images"]) == crops_ensembles.QUICK_IMAGES for row in crops)
    for folder in (speedup, output / "crops_ensembles"):
        assert (folder / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_scaling_experiment_runs_end_to_end_in_quick_mode(tmp_path):
    rows = residual_scaling.run(tmp_path, seeds=(0,), quick=True)
    quick_settings = [residual_scaling.SETTINGS[-1].name]
    assert [row["setting"] for row in rows] == quick_settings
    table = read_csv(tmp_path / "results.csv")
    assert set(table[0]) >= {"outcome", "died_at_step", "detector_fired_at_step"}
    assert {row["outcome"] for row in table} <= {"died", "learned", "chance", "non_finite_loss"}
    checks = read_csv(tmp_path / "zero_fraction.csv")
    assert {row["setting"] for row in checks} == set(quick_settings)
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
