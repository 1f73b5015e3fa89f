"""Experiment 3, the paper's Tables 2-5 at small scale: do more crops, and an ensemble of one
Inception-v4 with three Inception-ResNet-v2, lower the error?

The members are the models the residual speed-up experiment trained (it runs first where its
runs are missing): Inception-v4 of the first seed and Inception-ResNet-v2 of each seed. Each
member and their equal-weight ensemble is evaluated on the first `IMAGES` validation digits
under the single, 10-, 12- and 144-crop schemes. Written: `results.csv` (`evaluation.write_csv`: model, crops,
images, top-1 and top-5 error) and `figure.png` (top-1 error of each model under each scheme).
"""

from pathlib import Path

import keras
import numpy as np

from keras_inception.data import DataConfig, load_raw
from keras_inception.evaluation import Ensemble, Member, evaluate, markdown_table, write_csv
from keras_inception.experiments import residual_speedup
from keras_inception.plotting import plt, save
from keras_inception.run_folder import RunFolder

NAME = "crops_ensembles"
CROPS = ("single", "10", "12", "144")
# Validation digits evaluated: 144 crops of each through four networks is the experiment's cost
# (120 digits: about 80,000 crops); a quick mode takes a few.
IMAGES = 120
QUICK_IMAGES = 4


def members(speedup_output, seeds):
    """The ensemble's members from the speed-up runs: v4 of the first seed, IR-v2 of each."""
    plain, residual = residual_speedup.SETTINGS
    chosen = [(plain, seeds[0])] + [(residual, seed) for seed in seeds]
    found = []
    for setting, seed in chosen:
        run = RunFolder(Path(speedup_output) / setting.name / f"seed_{seed}")
        if not run.finished:
            raise ValueError(f"{run.path} holds no finished run to evaluate.")
        model = keras.saving.load_model(run.model_file)
        found.append(Member(model, name=f"{setting.name}_seed_{seed}"))
    return found


def run(output, seeds=(0, 1, 2), quick=False, speedup_output=None):
    """Evaluate the members and their ensemble under every crop scheme on the first `IMAGES`
    validation digits (`QUICK_IMAGES` in a quick mode) and write the table and the figure. The
    speed-up runs are read from `speedup_output` (default: beside `output`) and trained there
    if missing."""
    output = Path(output)
    speedup_output = Path(speedup_output or output.parent / residual_speedup.NAME)
    residual_speedup.run(speedup_output, seeds, quick)
    ensemble = Ensemble(members(speedup_output, seeds))
    dataset, _ = load_raw(DataConfig(source="digits"), "validation")
    dataset = dataset.take(QUICK_IMAGES if quick else IMAGES)
    results = evaluate(ensemble, dataset, CROPS)
    output.mkdir(parents=True, exist_ok=True)
    write_csv(results, output / "results.csv")
    print(markdown_table(results), end="")
    plot(results, output / "figure.png")
    return results


def plot(results, path):
    """Top-1 error (%) of each model and the ensemble, one bar per crop scheme."""
    models = list(dict.fromkeys(result.model for result in results))
    error = {(r.model, r.crops): 100 * r.top1_error for r in results}
    figure, axis = plt.subplots(figsize=(1.6 * len(models) + 3, 4), layout="constrained")
    width = 0.8 / len(CROPS)
    for index, crops in enumerate(CROPS):
        positions = np.arange(len(models)) + (index - (len(CROPS) - 1) / 2) * width
        axis.bar(
            positions, [error[model, crops] for model in models], width, label=f"{crops} crop(s)"
        )
    names = [
        f"ensemble of {model.count(' + ') + 1}" if " + " in model else model for model in models
    ]
    axis.set_xticks(np.arange(len(models)), names, rotation=20, ha="right", fontsize="small")
    axis.set_ylabel("validation top-1 error (%)")
    axis.grid(alpha=0.3, axis="y")
    axis.legend()
    figure.suptitle("Crops and ensembles (digits, 75x75)")
    return save(figure, path)
