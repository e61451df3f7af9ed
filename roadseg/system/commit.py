"""The git commit of code: a run records the one that trains it (config.json's "commit", roadseg/runs.py), a
result record the one that writes it too (roadseg/evaluation/results.py). git missing, failing or slow gives
None, never an error: no training stops for it."""
import os
import subprocess

from .bundled import PACKAGE

CHECKOUT = os.path.dirname(PACKAGE)  # the repository's root when roadseg/ is a checkout's
GIT_SECONDS = 30  # longer than git takes on any checkout, short enough not to hold up a training


def _git(repo, *args):
    """git's output in repo (stripped), or None when git is missing, fails or takes over GIT_SECONDS."""
    try:
        proc = subprocess.run(['git', '-C', repo] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, timeout=GIT_SECONDS)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_commit(repo):
    """The commit checked out at repo (40 hex digits, with '-dirty' when tracked files differ from it), or None
    outside git."""
    commit = _git(repo, 'rev-parse', 'HEAD')
    if not commit:
        return None
    return commit + ('-dirty' if _git(repo, 'status', '--porcelain', '--untracked-files=no') else '')


def code_commit(checkout=CHECKOUT):
    """git_commit of the checkout this roadseg/ is part of; None when it is not a checkout's roadseg/ (an installed
    package, even one installed in a virtual environment inside a checkout)."""
    top = _git(checkout, 'rev-parse', '--show-toplevel')
    try:
        if top is None or not os.path.samefile(top, checkout):
            return None
    except OSError:
        return None
    return git_commit(checkout)
