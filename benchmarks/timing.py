"""Timing shared by the benchmark scripts: alternating rounds, best of each, one table.

The machine the benchmarks run on is shared and noisy. Timing every model once per round, round
after round, and keeping each model's best round lets a load spike hit all of them alike rather
than whichever one happened to be running.
"""

import os

HEADER = f"{'model':40} {'policy':16} {'images/s':>9}"


def best_of_rounds(runs, rounds):
    """{label: best images/s} over `rounds` rounds; `runs` maps a label to a function that times
    one measurement and returns its images/s."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for label, run in runs.items():
            best[label] = max(best[label], run())
    return best


def print_setup(args):
    print(f"batch {args.batch}, best of {args.rounds} rounds of {args.steps} steps, 299x299, "
          f"{os.cpu_count()} CPUs")


def print_rows(best, policy, references):
    """One line per model: its images/s and the ratio to its reference (`references` maps a label
    to its reference's label; a model without one gets no ratio)."""
    for label, speed in best.items():
        reference = references.get(label)
        ratio = f"{speed / best[reference]:.2f}x" if reference else "-"
        print(f"{label:40} {policy:16} {speed:9.2f} {ratio:>22}", flush=True)
