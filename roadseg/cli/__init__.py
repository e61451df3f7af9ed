"""The command line of main.py.

    entry.py     main(), the entry point (an error becomes one `error:` line and an exit code); dispatch(), which
                 runs the chosen mode
    flags.py     build_parser(): the flags, their help, one-line usage errors with a did-you-mean
    modes.py     which flags fit which mode (training, --resume, --evaluate, --video, --predict, --export) and
                 the checks of their values
    settings.py  the training settings a run records (RECORDED) and their DEFAULTS, the recipes of the bundled
                 sample (SAMPLE_RECIPE) and of --dataset shapes (SHAPES_RECIPE), training_settings()

Importing this package loads no TensorFlow.
"""
from .entry import main
from .flags import build_parser
from .settings import DEFAULT_DATA, RECORDED, SAMPLE_DIR, SAMPLE_RECIPE, training_settings

__all__ = ['main', 'build_parser', 'DEFAULT_DATA', 'RECORDED', 'SAMPLE_DIR', 'SAMPLE_RECIPE', 'training_settings']
