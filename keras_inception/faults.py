"""Named points where a run can be killed on purpose, so that crash-safety tests kill it at an
exact moment instead of racing it.

Set `KERAS_INCEPTION_KILL_AT=<point>` (or `<point>:<n>` for its n-th time, default the first) and
the process SIGKILLs itself when it reaches that point; unset, `reached` does nothing. The points:

    batch_end          after a training step (count them across epochs for a mid-epoch kill)
    epoch_end          after an epoch's logs are written, before the backup of that epoch
    checkpoint_write   an epoch checkpoint written to its temporary name, not yet renamed
    backup_write       the backup's weights written to their temporary name, not yet renamed
    after_fit          `model.fit` has returned; the final model is not saved yet
    final_write        the final model written to its temporary name, not yet renamed
"""

import collections
import os
import signal

ENVIRONMENT_VARIABLE = "KERAS_INCEPTION_KILL_AT"
POINTS = ("batch_end", "epoch_end", "checkpoint_write", "backup_write", "after_fit", "final_write")

_times_reached = collections.Counter()


def reached(point):
    """Count one arrival at `point`; SIGKILL this process if it is the one asked for."""
    target = os.environ.get(ENVIRONMENT_VARIABLE)
    if not target:
        return
    name, _, count = target.partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={target!r}: the points are {POINTS}.")
    _times_reached[point] += 1
    if point == name and _times_reached[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
