"""Training images/s and achieved FLOP/s of Inception-ResNet-v2 on a GPU: float32 against mixed
precision, with and without XLA.

The one short, prepared run for a lent GPU machine: batch 64 at 299x299, the
`inception_resnet_v2_imagenet` recipe's method (our trainer's `compile_for_recipe`, then `model.fit`) on
one synthetic batch repeated, so that the input pipeline is not what is measured; the steps after
the first are timed (benchmarks/timing.py). Achieved FLOP/s counts a training step as three
forward passes (the backward pass does about twice the forward pass's multiply-adds) of
`keras_inception.models.forward_flops`. Keras compiles with XLA by default
on a GPU (`jit_compile="auto"`); both are timed so that the default can be checked. The script also
runs on a CPU, with small settings, to check it before a GPU is lent:

    python benchmarks/gpu_training.py [--batch 64] [--steps 20] [--size 299]
                                      [--policies float32 auto] [--xla on off]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf
import timing

import keras_inception
from keras_inception.models import forward_flops
from keras_inception.training import load_recipe
from keras_inception.training.precision import resolve_precision
from keras_inception.training.trainer import compile_for_recipe

CLASSES = 1000
RECIPE = "inception_resnet_v2_imagenet"
WARMUP_STEPS = 3


def synthetic_batches(batch, size):
    """One batch of images and one-hot labels, repeated forever."""
    images = tf.random.uniform((batch, size, size, 3), -1.0, 1.0, seed=0)
    labels = tf.one_hot(tf.random.uniform((batch,), 0, CLASSES, tf.int32, seed=1), CLASSES)
    return tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)


def measure(policy, xla, args, recipe):
    """Images/s and the model's forward FLOPs per image, trained under `policy`."""
    timing.fresh_session(policy)
    model = keras_inception.InceptionResNetV2(
        input_shape=(args.size, args.size, 3),
        classes=CLASSES,
        dropout_rate=recipe.model.dropout_rate,
    )
    compile_for_recipe(model, recipe, steps_per_epoch=args.steps)
    model.jit_compile = xla
    batches = synthetic_batches(args.batch, args.size)
    model.fit(batches, steps_per_epoch=WARMUP_STEPS, epochs=1, verbose=0)  # trace, compile, warm up
    speed = timing.fit_images_per_second(
        model, args.batch, batches, steps_per_epoch=args.steps, epochs=1
    )
    return speed, forward_flops(model)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps, plus one")
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["float32", "auto"],
        help='Keras policy names, or "auto" for the recipe default on this machine',
    )
    parser.add_argument("--xla", nargs="+", choices=("on", "off"), default=["on", "off"])
    args = parser.parse_args()
    recipe = load_recipe(RECIPE, ["model.aux_logits=false"])
    devices = tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("CPU")
    details = tf.config.experimental.get_device_details(devices[0])
    print(
        f"{devices[0].name} {details.get('device_name', '')} {details.get('compute_capability', '')}; "
        f"InceptionResNetV2 batch {args.batch} at {args.size}x{args.size}, {args.steps} steps; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )
    print(f"{'policy':16} {'XLA':4} {'images/s':>9} {'train TFLOP/s':>14} {'GFLOPs/image':>13}")
    for policy in args.policies:
        for xla in args.xla:
            resolved = resolve_precision(policy)
            speed, flops = measure(resolved, xla == "on", args, recipe)
            print(
                f"{resolved:16} {xla:4} {speed:9.1f} {3 * flops * speed / 1e12:14.2f} "
                f"{flops / 1e9:13.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
