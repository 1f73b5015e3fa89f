"""Training images/s at 299x299: our three networks, trained by our trainer, against timm's
inception_v4 and inception_resnet_v2 trained the same way in PyTorch, on the same CPU in one run.

A step is forward, backward and optimizer update, with the `inception_resnet_v2_imagenet`
recipe's method on both sides: label-smoothed cross-entropy, L2 weight decay, RMSProp (rho 0.9,
momentum 0.9, epsilon 1.0), global gradient clipping and the weight average. Ours are compiled by
`keras_inception.training.method.compile_for_recipe` and run through `model.fit`, as `train` does;
timm's train in a plain loop (benchmarks/timm_training.py), in PyTorch's NCHW layout and in
channels_last. float32, then bf16: Keras's `mixed_bfloat16` policy against `torch.autocast` in
bfloat16. The models are timed in alternating rounds and the best round of each is kept
(benchmarks/timing.py); each of ours gets the ratio to the fastest timm row of its network, and the
last lines give it for the recipe's default precision (`"auto"`) on this machine. "build+first
step" is the wait from building the model to the end of its first step (tracing included).

`--memory` prints, instead, the peak resident memory of a process that builds one model and trains
it for two steps, each model in a process of its own (use `--batch 32`, the paper's per-replica
batch). `--keras-backend torch` (or `jax`) runs our networks on that Keras backend: the backend is
fixed when Keras is imported, so the script starts itself again with `KERAS_BACKEND` set.
`--jit-compile` compiles our training step with XLA.

    python benchmarks/training_vs_timm.py [--batch 8] [--steps 3] [--rounds 2]
                                          [--policies float32 mixed_bfloat16] [--memory]
                                          [--keras-backend tensorflow] [--jit-compile]
"""

import argparse
import functools
import os
import sys
import time

# timm and torch (and the triton they load) come before Keras imports TensorFlow: the other order
# crashes in triton's import.
import timm
import torch
from timm_training import timm_runner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import timing

from keras_inception.models import networks
from keras_inception.training import load_recipe
from keras_inception.training.method import compile_for_recipe
from keras_inception.training.precision import resolve_precision

CLASSES = 1000
RECIPE = "inception_resnet_v2_imagenet"
# Each registered network, beside timm's model of the same name where timm has one.
OURS = {
    f"keras_inception {spec.factory.__name__}": (
        spec.factory,
        f"timm {spec.name}" if timm.is_model(spec.name) else None,
    )
    for spec in networks()
}
POLICIES = ("float32", "mixed_bfloat16")
# timm's rows: each network in PyTorch's default layout and in channels_last.
LAYOUTS = {"NCHW": False, "channels_last": True}
TIMM = {
    f"{reference} {layout}": (reference.removeprefix("timm "), channels_last)
    for _, reference in OURS.values()
    if reference
    for layout, channels_last in LAYOUTS.items()
}


def keras_runner(factory, recipe, images, labels, batch, jit_compile):
    """A function that trains a fresh network of ours for one pass over `images` and returns the
    images/s of its steps after the first (benchmarks/timing.py)."""
    model = factory(classes=CLASSES, dropout_rate=recipe.model.dropout_rate)
    compile_for_recipe(model, recipe, steps_per_epoch=len(images) // batch)
    model.jit_compile = jit_compile
    return functools.partial(
        timing.fit_images_per_second,
        model,
        batch,
        images,
        labels,
        batch_size=batch,
        epochs=1,
        shuffle=False,
    )


def restart_on_backend(backend):
    """Run this script again in a process whose Keras uses `backend`."""
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "KERAS_BACKEND": backend})


def runners(policy, recipe, images, classes, args):
    """{label: a function that builds the row's model and returns its timed pass} for `policy`."""
    one_hot = keras.utils.to_categorical(classes, CLASSES)
    builders = {
        label: functools.partial(
            keras_runner, factory, recipe, images, one_hot, args.batch, args.jit_compile
        )
        for label, (factory, _) in OURS.items()
    }
    return builders | {
        label: functools.partial(
            timm_runner,
            name,
            recipe,
            images,
            classes,
            args.batch,
            classes=CLASSES,
            bfloat16=policy == "mixed_bfloat16",
            channels_last=channels_last,
        )
        for label, (name, channels_last) in TIMM.items()
    }


def time_policy(policy, recipe, images, classes, args):
    """Build, warm up and time every model under `policy`: ({label: images/s}, {label: seconds
    from the start of the build to the end of the first step}); the models are freed on return."""
    timing.fresh_session(policy)
    runs, first_pass = {}, {}
    for label, build in runners(policy, recipe, images, classes, args).items():
        start = time.perf_counter()
        runs[label] = build()
        runs[label]()  # build, trace and warm up outside the timing
        first_pass[label] = time.perf_counter() - start
    best = timing.best_of_rounds(runs, args.rounds)
    # The first pass less its later steps, at the speed the timed rounds reached.
    later_steps = (args.steps - 1) * args.batch
    return best, {label: first_pass[label] - later_steps / best[label] for label in best}


def peak_memory(row, recipe, args):
    """Peak resident GiB of this process after building `row` ("LABEL POLICY") and training it
    for two steps of `args.batch` images."""
    label, policy = row.rsplit(" ", 1)
    timing.fresh_session(policy)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2 * args.batch, 299, 299, 3)).astype("float32")
    classes = rng.integers(0, CLASSES, len(images))
    runners(policy, recipe, images, classes, args)[label]()()
    return timing.peak_rss_gib()


def print_memory(args):
    """Each of our networks that timm has and timm's, per policy, each in a process of its own."""
    print(f"peak resident memory of a process that trains 2 steps of batch {args.batch}, 299x299:")
    for policy in args.policies:
        for label, (_, reference) in OURS.items():
            if reference is None:
                continue
            for row in [label] + [f"{reference} {layout}" for layout in LAYOUTS]:
                gib = float(timing.run_again("--memory-row", f"{row} {policy}"))
                print(f"{row:40} {policy:16} {gib:9.2f} GiB", flush=True)


def print_table(results, first_steps, default_policy):
    """Every row, ours with the ratio to the fastest timm row of the same network (whatever its
    precision and layout), then that ratio for the recipe's default precision here."""
    fastest = {}  # "timm NAME" -> (its fastest row's speed, policy, label)
    for policy, best in results.items():
        for label, speed in best.items():
            if label in TIMM:
                network = label.rsplit(" ", 1)[0]
                fastest[network] = max(fastest.get(network, (0.0,)), (speed, policy, label))
    print(f"{timing.HEADER} {'/ fastest timm row':>22} {'build+first step s':>19}")
    for policy, best in results.items():
        for label, speed in best.items():
            reference = OURS.get(label, (None, None))[1]
            ratio = f"{speed / fastest[reference][0]:.2f}x" if reference in fastest else "-"
            first = first_steps[policy][label]
            print(f"{label:40} {policy:16} {speed:9.2f} {ratio:>22} {first:19.1f}")
    if default_policy not in results:
        return
    print(f"recipe default (precision auto = {default_policy} here) / fastest timm row:")
    for label, (_, reference) in OURS.items():
        if reference in fastest:
            speed, policy, timm_label = fastest[reference]
            ours = results[default_policy][label]
            print(
                f"  {label}: {ours:.2f} / {speed:.2f} ({timm_label}, {policy}) = {ours / speed:.2f}x"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=POLICIES)
    parser.add_argument(
        "--keras-backend", choices=("tensorflow", "torch", "jax"), default="tensorflow"
    )
    parser.add_argument(
        "--jit-compile", action="store_true", help="compile our training step with XLA"
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="print each model's peak resident memory instead (use --batch 32, the paper's)",
    )
    parser.add_argument("--memory-row", help=argparse.SUPPRESS)  # a child's one row
    args = parser.parse_args()
    if keras.backend.backend() != args.keras_backend:
        restart_on_backend(args.keras_backend)
    recipe = load_recipe(RECIPE, ["model.aux_logits=false"])
    if args.memory_row:
        print(peak_memory(args.memory_row, recipe, args))
        return
    if args.memory:
        print_memory(args)
        return
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch * args.steps, 299, 299, 3)).astype("float32")
    classes = rng.integers(0, CLASSES, len(images))

    timing.print_setup(args)
    print(
        f"ours: Keras {keras.__version__} on {keras.backend.backend()}"
        f"{' with XLA' if args.jit_compile else ''}; timm {timm.__version__}, torch {torch.__version__}"
    )
    timed = {policy: time_policy(policy, recipe, images, classes, args) for policy in args.policies}
    speeds = {policy: speed for policy, (speed, _) in timed.items()}
    first_steps = {policy: first for policy, (_, first) in timed.items()}
    print_table(speeds, first_steps, resolve_precision("auto"))


if __name__ == "__main__":
    main()
