"""Timing shared by the benchmark scripts: alternating rounds, best of each, one table; and the
peak memory of a measurement run in a process of its own.

The machine the benchmarks run on is shared and noisy. Timing every model once per round, round
after round, and keeping each model's best round lets a load spike hit all of them alike rather
than whichever one happened to be running.

Training is timed per step, from the end of a pass's first step to the end of its last: what a long
run sustains. `model.fit` also spends a second or more per call outside its steps (building the
data iterator, copying the weight average into the model at the end), once per epoch in a real
run but once per step in a benchmark of few steps; timm's loop has no such cost.
"""

import os
import resource
import subprocess
import sys
import time

import keras

HEADER = f"{'model':40} {'policy':16} {'images/s':>9}"


def fresh_session(policy):
    """Free the previous models and make `policy` the global dtype policy, in that order:
    `clear_session` resets the policy to float32, so the other order times float32 under a
    mixed-precision label."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)


def best_of_rounds(runs, rounds):
    """{label: best images/s} over `rounds` rounds; `runs` maps a label to a function that times
    one measurement and returns its images/s."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for label, run in runs.items():
            best[label] = max(best[label], run())
    return best


def images_per_second(step_ends, batch):
    """Images/s over the steps after the first, from the times each step ended."""
    if len(step_ends) < 2:
        raise ValueError("time at least two steps: the first one only starts the clock")
    return batch * (len(step_ends) - 1) / (step_ends[-1] - step_ends[0])


class StepClock(keras.callbacks.Callback):
    """Notes when each training step of a `fit` call ends. Reading the step's loss waits for the
    step to finish, also on a GPU, where the call that runs a step returns before it is done."""

    def on_train_begin(self, logs=None):
        self.step_ends = []

    def on_train_batch_end(self, batch, logs=None):
        keras.ops.convert_to_numpy(logs["loss"])
        self.step_ends.append(time.perf_counter())


def fit_images_per_second(model, batch, *fit_args, **fit_kwargs):
    """Run `model.fit(*fit_args, **fit_kwargs)` quietly and return the images/s of its steps
    after the first; `batch` is the images per step."""
    clock = StepClock()
    model.fit(*fit_args, verbose=0, callbacks=[clock], **fit_kwargs)
    return images_per_second(clock.step_ends, batch)


def print_setup(args):
    print(
        f"batch {args.batch}, best of {args.rounds} rounds of {args.steps} steps, 299x299, "
        f"{os.cpu_count()} CPUs"
    )


def print_rows(best, policy, references):
    """One line per model: its images/s and the ratio to its reference (`references` maps a label
    to its reference's label; a model without one gets no ratio)."""
    for label, speed in best.items():
        reference = references.get(label)
        ratio = f"{speed / best[reference]:.2f}x" if reference else "-"
        print(f"{label:40} {policy:16} {speed:9.2f} {ratio:>22}", flush=True)


def peak_rss_gib():
    """This process's peak resident memory, in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux counts KiB


def run_again(*extra):
    """Run this script again with its own arguments and `extra` in a process of its own (peak
    memory is per process) and return the last line it printed; exit with its error if it failed."""
    command = [sys.executable, sys.argv[0], *sys.argv[1:], *extra]
    child = subprocess.run(command, capture_output=True, text=True)
    if child.returncode:
        sys.exit(f"{' '.join(extra)} failed:\n{child.stderr[-3000:]}")
    return child.stdout.splitlines()[-1]
