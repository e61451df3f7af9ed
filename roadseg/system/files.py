"""User-facing errors, atomic file writes and run folders."""
import contextlib
import datetime
import hashlib
import os
import tempfile


def _current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _current_umask()  # read once: os.umask can only be read by setting it


class InputError(Exception):
    """A problem with the user's input: main.py prints it as one line and exits 2."""


class OutputError(InputError):
    """An output that cannot be written (a folder without write permission, a file where a folder must go):
    main.py prints it as one line and exits 1, as for a disk that fills up while writing
    (docs/troubleshooting.md, exit status)."""


def first_line(exc, limit=200):
    """The first line of an exception's message (its type name if empty), for one-line errors."""
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:limit]


def check_writable_dir(path, what='output folder'):
    """Create `path` if needed and prove it is writable; OutputError otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix='.write-test-'):
            pass
    except OSError as e:
        raise OutputError('{} {} is not writable: {}'.format(what, path, e.strerror or e))


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    On any error (disk full included) the temporary file is removed and an existing `path` is untouched.
    The file gets the permissions a plain open() would give it (0644 under umask 022), not mkstemp's 0600.
    """
    directory, name = os.path.split(os.path.abspath(path))
    base, ext = os.path.splitext(name)
    fd, tmp = tempfile.mkstemp(prefix='.' + base + '.', suffix='.tmp' + ext, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno:
            raise OSError(e.errno, e.strerror, path)  # name the file the user asked for
        raise


def write_bytes_atomic(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def save_image_atomic(path, image):
    """Write a PIL image to `path` (format from the extension) via a temporary file."""
    with atomic_path(path) as tmp:
        image.save(tmp, format=os.path.splitext(path)[1][1:].upper().replace('JPG', 'JPEG'))


def new_run_dir(runs_dir):
    """Reserve a fresh `<runs_dir>/<timestamp>.partial` folder; return (partial_path, final_path).

    Runs started in the same second get `-2`, `-3`, ... suffixes: mkdir is the lock, so two
    processes never share a folder.
    """
    check_writable_dir(runs_dir, 'runs folder')
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    for n in range(1, 1000):
        name = stamp if n == 1 else '{}-{}'.format(stamp, n)
        final = os.path.join(runs_dir, name)
        partial = final + '.partial'
        if os.path.exists(final):
            continue
        try:
            os.mkdir(partial)
        except FileExistsError:
            continue
        return partial, final
    raise InputError('could not reserve a run folder in {}'.format(runs_dir))


def finish_run_dir(partial, final):
    """Rename a complete run folder to its final name."""
    try:
        os.rename(partial, final)
    except OSError as e:
        raise InputError('could not rename {} to {}: {}'.format(partial, final, e.strerror or e))
    return final



def append_line(path, line):
    """Append one line with a single write(2) in O_APPEND mode, so a crash leaves whole lines behind."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (line.rstrip('\n') + '\n').encode())
    finally:
        os.close(fd)


def file_digest(path, algorithm='sha256'):
    """Hex digest of the file's bytes (hashlib's algorithm name), read in 1 MB blocks."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
