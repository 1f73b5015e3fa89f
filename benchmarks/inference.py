"""Inference images/s at 299x299: our three networks beside keras.applications.InceptionResNetV2.

Every model runs through the same `predict_on_batch` path in the same process, in float32 and in
mixed_bfloat16, and the ratio ours / keras.applications is printed for each (InceptionResNetV2 is
the like-for-like comparison; v4 and v1 have no keras.applications twin and are shown for scale).
The models are timed in alternating rounds and the best round of each is kept, so that a load
spike on a shared machine hits all of them alike rather than one.

    python benchmarks/inference.py [--batch 8] [--steps 3] [--rounds 3]
"""

import argparse
import functools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import timing

from keras_inception.models import networks

MODELS = {
    "keras.applications InceptionResNetV2": lambda: keras.applications.InceptionResNetV2(
        weights=None
    ),
    **{f"keras_inception {spec.factory.__name__}": spec.factory for spec in networks()},
}
REFERENCE = "keras.applications InceptionResNetV2"


def images_per_second(model, images, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(images)
    return len(images) * steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images = np.random.default_rng(0).uniform(-1, 1, (args.batch, 299, 299, 3)).astype("float32")

    timing.print_setup(args)
    print(f"{timing.HEADER} {'vs keras.applications':>22}")
    for policy in ("float32", "mixed_bfloat16"):
        timing.fresh_session(policy)
        models = {label: build() for label, build in MODELS.items()}
        for model in models.values():
            model.predict_on_batch(images)  # build and trace outside the timing
        runs = {
            label: functools.partial(images_per_second, model, images, args.steps)
            for label, model in models.items()
        }
        best = timing.best_of_rounds(runs, args.rounds)
        timing.print_rows(best, policy, dict.fromkeys(best, REFERENCE))


if __name__ == "__main__":
    main()
