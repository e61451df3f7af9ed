"""Where the files the project ships beside its code are: splits/ (the KITTI split files) and data/sample/.

In a checkout, and in an editable install (`pip install -e .`), they are in the repository, the folder that
holds roadseg/. A normal `pip install .` copies them into roadseg/_bundled/ (pyproject.toml), with the same
relative paths, so a run's recorded split names ('splits/val.txt') are the same either way.
"""
import os

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALLED = os.path.join(PACKAGE, '_bundled')
ROOT = INSTALLED if os.path.isdir(INSTALLED) else os.path.dirname(PACKAGE)


def path(*parts):
    """A file or folder the project ships, e.g. path('splits', 'val.txt')."""
    return os.path.join(ROOT, *parts)
