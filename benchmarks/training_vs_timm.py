"""Training images/s at 299x299: our three networks, trained by our trainer, against timm's
inception_v4 and inception_resnet_v2 trained the same way in PyTorch, on the same CPU in one run.

A step is forward, backward and optimizer update, with the `inception_resnet_v2_imagenet`
recipe's method on both sides: label-smoothed cross-entropy, L2 weight decay, RMSProp (rho 0.9,
momentum 0.9, epsilon 1.0), global gradient clipping and the weight average. Ours are compiled by
`keras_inception.training.method.compile_for_recipe` and run through `model.fit`, as `train` does;
timm's models use `torch.optim.RMSprop`, `clip_grad_norm_` and `timm.utils.ModelEmaV3` in a plain
loop. float32, then bf16: Keras's `mixed_bfloat16` policy against `torch.autocast` in bfloat16.
The models are timed in alternating rounds and the best round of each is kept (benchmarks/timing.py).

`--keras-backend torch` (or `jax`) runs our networks on that Keras backend instead of TensorFlow:
the backend is fixed when Keras is imported, so the script starts itself again with
`KERAS_BACKEND` set. `--jit-compile` compiles our training step with XLA.

    python benchmarks/training_vs_timm.py [--batch 8] [--steps 3] [--rounds 2]
                                          [--policies float32 mixed_bfloat16]
                                          [--keras-backend tensorflow] [--jit-compile]
"""

import argparse
import functools
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# torch (and the triton it loads) must come before TensorFlow: the other order crashes triton.
import keras
import numpy as np
import timing
import timm
import torch

from keras_inception.models import networks
from keras_inception.training import load_recipe
from keras_inception.training.method import compile_for_recipe

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
TIMM = {reference: reference.removeprefix("timm ") for _, reference in OURS.values() if reference}


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


def timm_runner(name, recipe, images, labels, batch, bfloat16):
    """The same for a timm network, trained by a plain PyTorch loop with the recipe's method."""
    model = timm.create_model(
        name, num_classes=CLASSES, drop_rate=recipe.model.dropout_rate
    ).train()
    settings = recipe.optimizer
    optimizer = torch.optim.RMSprop(
        model.parameters(),
        lr=settings.learning_rate,
        alpha=settings.rho,
        eps=settings.epsilon,
        momentum=settings.momentum,
        weight_decay=recipe.training.weight_decay,  # L2 in the gradient, as the loss penalty gives
    )
    average = timm.utils.ModelEmaV3(model, decay=settings.ema_momentum)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.training.label_smoothing)
    batches = list(
        zip(
            torch.from_numpy(images).permute(0, 3, 1, 2).split(batch),
            torch.from_numpy(labels).split(batch),
        )
    )

    def step(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.global_clipnorm)
        optimizer.step()
        average.update(model)

    def run():
        step_ends = []
        for x, y in batches:
            step(x, y)
            step_ends.append(time.perf_counter())
        return timing.images_per_second(step_ends, batch)

    return run


def restart_on_backend(backend):
    """Run this script again in a process whose Keras uses `backend`."""
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "KERAS_BACKEND": backend})


def time_policy(policy, recipe, images, classes, args):
    """Build, warm up and time every model under `policy`; the models are freed on return."""
    timing.fresh_session(policy)
    one_hot = keras.utils.to_categorical(classes, CLASSES)
    runs = {
        label: keras_runner(factory, recipe, images, one_hot, args.batch, args.jit_compile)
        for label, (factory, _) in OURS.items()
    }
    runs |= {
        label: timm_runner(name, recipe, images, classes, args.batch, policy == "mixed_bfloat16")
        for label, name in TIMM.items()
    }
    for run in runs.values():  # build, trace and warm up outside the timing
        run()
    best = timing.best_of_rounds(runs, args.rounds)
    timing.print_rows(best, policy, {label: reference for label, (_, reference) in OURS.items()})


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
    args = parser.parse_args()
    if keras.backend.backend() != args.keras_backend:
        restart_on_backend(args.keras_backend)
    recipe = load_recipe(RECIPE, ["model.aux_logits=false"])
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch * args.steps, 299, 299, 3)).astype("float32")
    classes = rng.integers(0, CLASSES, len(images))

    timing.print_setup(args)
    print(
        f"ours: Keras {keras.__version__} on {keras.backend.backend()}"
        f"{' with XLA' if args.jit_compile else ''}; timm {timm.__version__}, torch {torch.__version__}"
    )
    print(f"{timing.HEADER} {'ours / timm':>22}")
    for policy in args.policies:
        time_policy(policy, recipe, images, classes, args)


if __name__ == "__main__":
    main()
