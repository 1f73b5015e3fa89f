"""Training images/s at 299x299: our three networks, compiled the paper's way by our trainer,
beside a plain `model.fit` on keras.applications.InceptionResNetV2.

Ours are compiled by `keras_inception.training.method.compile_for_recipe` with the
`inception_resnet_v2_imagenet` recipe's method (RMSProp with the weight average, global clipping,
label smoothing, L2 weight decay; the auxiliary head off, as keras.applications has none), so the
ratio includes what the method costs per step. keras.applications gets RMSProp and cross-entropy,
nothing else. Both run `model.fit` on the same in-memory batches, in float32 and mixed_bfloat16;
the models are timed in alternating rounds and the best round of each is kept, so that a load
spike on a shared machine hits all of them alike.

    python benchmarks/training_throughput.py [--batch 4] [--steps 3] [--rounds 2] [--policies float32]
"""

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import timing

from keras_inception.models import networks
from keras_inception.training import load_recipe
from keras_inception.training.method import compile_for_recipe

CLASSES = 1000
REFERENCE = "keras.applications InceptionResNetV2"
OURS = {f"keras_inception {spec.factory.__name__}": spec.factory for spec in networks()}


def build_models(steps_per_epoch):
    recipe = load_recipe("inception_resnet_v2_imagenet", ["model.aux_logits=false"])
    reference = keras.applications.InceptionResNetV2(weights=None, classes=CLASSES)
    reference.compile(keras.optimizers.RMSprop(), keras.losses.CategoricalCrossentropy())
    models = {REFERENCE: reference}
    for label, factory in OURS.items():
        model = factory(classes=CLASSES)
        compile_for_recipe(model, recipe, steps_per_epoch)
        models[label] = model
    return models


def time_policy(policy, images, labels, args):
    """Build, warm up and time every model under `policy`; the models are freed on return."""
    timing.fresh_session(policy)
    models = build_models(args.steps)
    for model in models.values():  # build and trace outside the timing
        model.fit(images[: args.batch], labels[: args.batch], batch_size=args.batch, verbose=0)
    runs = {
        label: functools.partial(
            timing.fit_images_per_second,
            model,
            args.batch,
            images,
            labels,
            batch_size=args.batch,
            epochs=1,
            shuffle=False,
        )
        for label, model in models.items()
    }
    best = timing.best_of_rounds(runs, args.rounds)
    timing.print_rows(best, policy, dict.fromkeys(best, REFERENCE))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--policies", default="float32,mixed_bfloat16", help="comma-separated precision policies"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch * args.steps, 299, 299, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, CLASSES, len(images)), CLASSES)

    timing.print_setup(args)
    print(f"{timing.HEADER} {'vs keras.applications':>22}")
    for policy in args.policies.split(","):
        time_policy(policy, images, labels, args)


if __name__ == "__main__":
    main()
