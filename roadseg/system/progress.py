"""Progress bars: tqdm with a total and an ETA on a terminal, plain lines in a log file."""
import sys

from tqdm import tqdm


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines (for logs, CI, pipes)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        text = text.strip('\r\n')
        if text:
            self.stream.write(text + '\n')

    def flush(self):
        self.stream.flush()


def on_terminal(stream=None):
    stream = stream or sys.stdout
    return hasattr(stream, 'isatty') and stream.isatty()


def bar(iterable=None, total=None, desc=None, unit='it', quiet_in_logs=False, log_every=30.0, **kwargs):
    """A tqdm bar on stdout. Off a terminal: a plain line every `log_every` seconds and one at the end, or
    nothing at all with quiet_in_logs (for loops that print their own summary line, such as epochs)."""
    if on_terminal():
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stdout, dynamic_ncols=True, **kwargs)
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=_Lines(sys.stdout), disable=quiet_in_logs,
                mininterval=log_every, maxinterval=log_every, ascii=True, ncols=100, **kwargs)
