"""Learning-rate schedules over a run: the rate as a function of the run's progress t in [0, 1).

t = (epoch + step / steps_per_epoch) / epochs, so a schedule stretches with --epochs (and a --resume that
changes --epochs reshapes what is left of it).
"""
import math

SCHEDULES = ('constant', 'poly', 'cosine')
POLY_POWER = 0.9  # FCN / DeepLab's "poly" policy


def learning_rate_at(kind, peak, warmup=0.0):
    """Callable t -> learning rate: `peak` throughout ('constant'), or after a linear warm-up from peak/10 over
    the first `warmup` fraction of the run, decaying to 0 at t = 1 as peak * (1 - u) ** 0.9 ('poly') or
    peak * (1 + cos(pi * u)) / 2 ('cosine'), u the progress after the warm-up."""
    if kind not in SCHEDULES:
        raise ValueError('learning-rate schedule must be one of {}, got {!r}'.format(', '.join(SCHEDULES), kind))
    if not 0 <= warmup < 1:
        raise ValueError('warm-up must be a fraction of the run in [0, 1), got {}'.format(warmup))

    def rate(t):
        if t < warmup:
            return peak * (0.1 + 0.9 * t / warmup)
        if kind == 'constant':
            return peak
        u = min(max((t - warmup) / (1 - warmup), 0.0), 1.0)
        return peak * ((1 - u) ** POLY_POWER if kind == 'poly' else (1 + math.cos(math.pi * u)) / 2)
    return rate


def restarted_at(schedule, split):
    """The callable t -> rate `schedule` run twice: over t in [0, split) and again, from its start, over
    [split, 1); split in (0, 1). --half-size-epochs: the half-size epochs are the first pass."""
    if not 0 < split < 1:
        raise ValueError('the restart must fall inside the run, at t in (0, 1), got {}'.format(split))
    return lambda t: schedule(t / split) if t < split else schedule((t - split) / (1 - split))
