"""The `keras-inception` command: a thin layer over the Python API, one subcommand per job.

Each subcommand is a pair of functions: `_add_<name>(subparsers)` declares its arguments and sets
`handler`, and the handler runs it and returns the exit status.
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="keras-inception",
        description="Inception-v4 and Inception-ResNet-v1/v2 for Keras 3: train, evaluate, plot, convert.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(subparsers)
    args = parser.parse_args(argv)
    return args.handler(args)


SUBCOMMANDS = []


if __name__ == "__main__":
    sys.exit(main())
