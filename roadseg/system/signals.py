"""Ctrl-C and SIGTERM for the whole process: `docker stop` (Python is PID 1 there and ignores SIGTERM unless a
handler is installed), `kill`, and a background job's SIGINT all raise KeyboardInterrupt, so every command stops
cleanly: atomic outputs remove their temporary files, training saves a checkpoint."""
import contextlib
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _handlers(handler):
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def raise_on_stop():
    """In the block, Ctrl-C and SIGTERM raise KeyboardInterrupt (also in a background job, whose SIGINT the
    shell set to be ignored)."""
    return _handlers(_raise_interrupt)


@contextlib.contextmanager
def deferred_stop():
    """Hold Ctrl-C and SIGTERM until the block is done, then raise KeyboardInterrupt."""
    received = []
    with _handlers(lambda signum, frame: received.append(signum)):
        yield
    if received:
        raise KeyboardInterrupt
