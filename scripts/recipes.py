"""The published recipes: one fixed `python main.py` command each (scripts/reproduce.py runs them,
scripts/results_doc.py writes their tables), and where their records go.

A recipe's `which` is the model its record scores: 'best', the epoch kept by validation (KITTI keeps it on the
selection split and scores the report split, which chose nothing), or 'last', the end of the fixed budget (CamVid
has only train and val, and the sample's 3 validation images are all it has: a kept model would have been chosen
on the images it is scored on).
"""
import collections
import os

from roadseg import cli
from roadseg.model.names import DECODER_NAMES

Recipe = collections.namedtuple('Recipe', 'flags flip data_dir which')
CAMVID = Recipe('--dataset camvid --data-dir data/CamVid --image-shape 352 480 --epochs 33 --batch-size 4 '
                '--learning-rate 1e-4 --lr-schedule constant --warmup 0', False, 'data/CamVid', 'last')
KITTI = Recipe('--epochs 40 --batch-size 4 --learning-rate 3e-4 --lr-schedule poly --warmup 0.05', True,
               cli.DEFAULT_DATA, 'best')
# docs/results.md's sections and README's headline; CamVid's full budget takes KITTI's learning rate (poly decay from
# 3e-4 after a 5% warm-up) and is scored plain and with --flip as KITTI's, its comparisons (COMPARISONS) keep
# CAMVID's constant 1e-4, plain
PUBLISHED = {
    'kitti': KITTI,
    'camvid': CAMVID._replace(flags='--dataset camvid --data-dir data/CamVid --image-shape 352 480 --epochs 33 '
                                    '--batch-size 4 --learning-rate 3e-4 --lr-schedule poly --warmup 0.05', flip=True),
    'sample': Recipe('--data-dir data/sample --epochs 6 --batch-size 2 --repeat 4 --learning-rate 3e-4 '
                     '--lr-schedule poly --warmup 0', False, 'data/sample', 'last'),
}
# The decoder comparisons of docs/decoders.md, at equal training images: the recipe they vary, with its epochs and
# flip in place of the recipe's
Comparison = collections.namedtuple('Comparison', 'recipe epochs flip')
COMPARISONS = {'camvid': Comparison(CAMVID, 5, False),   # 1,835 images: 5 epochs of batch 4 over 367
               'kitti': Comparison(KITTI, 12, False)}    # 2,496 images: 12 epochs over 208


def comparison_name(dataset, decoder):
    return '{}-{}'.format(dataset, decoder)


def with_decoder(comparison, decoder, *flags):
    """The comparison's recipe with its epochs (`--epochs`, in place of the recipe's) and flip, and `--decoder
    decoder` and flags (pairs of flag and value) set: in place of the recipe's where it has the flag, else added."""
    words = comparison.recipe.flags.split()
    for flag, value in zip(('--epochs', '--decoder') + flags[::2], (str(comparison.epochs), decoder) + flags[1::2]):
        if flag in words:
            words[words.index(flag) + 1] = value
        else:
            words += [flag, value]
    return comparison.recipe._replace(flags=' '.join(words), flip=comparison.flip)


# Rows of a comparison beside the decoders: (row label, recipe name, decoder, flags); camvid-fcn8-median is CamVid's
# median-frequency class weights (SegNet's) against none (camvid-fcn8); MEDIAN_POLY adds the KITTI recipe's learning
# rate (poly decay from 3e-4 after a 5% warm-up) in place of the constant 1e-4, for FCN-8s and the full U-Net ladder
MEDIAN_POLY = ('--class-weights', 'median', '--learning-rate', '3e-4', '--lr-schedule', 'poly', '--warmup', '0.05')
VARIANTS = {'camvid': [('fcn8 --class-weights median', 'camvid-fcn8-median', 'fcn8', ('--class-weights', 'median')),
                       ('fcn8 --class-weights median, poly 3e-4', 'camvid-fcn8-median-poly', 'fcn8', MEDIAN_POLY),
                       ('unet --class-weights median, poly 3e-4', 'camvid-unet-median-poly', 'unet', MEDIAN_POLY)],
            'kitti': []}


def compared(dataset):
    """[(row label, recipe name)] of a comparison: one per decoder, in --decoder's order, then its variants."""
    return ([(d, comparison_name(dataset, d)) for d in DECODER_NAMES]
            + [(label, name) for label, name, _, _ in VARIANTS[dataset]])


RECIPES = dict(PUBLISHED, **{comparison_name(dataset, decoder): with_decoder(comparison, decoder)
                             for dataset, comparison in COMPARISONS.items() for decoder in DECODER_NAMES})
RECIPES.update({name: with_decoder(COMPARISONS[dataset], decoder, *flags)
                for dataset, variants in VARIANTS.items() for _, name, decoder, flags in variants})
RESULTS_DIR = os.path.join('docs', 'results')
