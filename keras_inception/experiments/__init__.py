"""The paper's claims at small scale, one module per experiment (docs/paper.md): each trains its
runs through the recipe layer into ordinary run folders and writes a CSV table and a figure.

    keras-inception experiment residual_speedup   # residuals speed training at matched FLOPs
    keras-inception experiment residual_scaling   # scaling keeps wide Inception-ResNets alive
    keras-inception experiment crops_ensembles    # more crops and ensembles lower the error
"""

import importlib

EXPERIMENTS = ("residual_speedup", "residual_scaling", "crops_ensembles")


def run_experiment(name, output=None, seeds=(0, 1, 2), quick=False):
    """Run experiment `name` into `output` (default `runs/experiments/<name>`): every run it
    lacks is trained, finished ones are read back. `quick` trains each run a few steps, to check
    the experiment end to end. Returns the experiment's result rows."""
    if name not in EXPERIMENTS:
        raise ValueError(f"No experiment named {name!r}: one of {', '.join(EXPERIMENTS)}.")
    if not seeds:
        raise ValueError("An experiment needs at least one seed.")
    module = importlib.import_module(f"keras_inception.experiments.{name}")
    return module.run(output or f"runs/experiments/{name}", tuple(seeds), quick)
