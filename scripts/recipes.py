"""The published recipes: one fixed `python main.py` command each (scripts/reproduce.py runs them,
scripts/results_doc.py writes their tables), and where their records go."""
import collections
import os

from roadseg import cli

Recipe = collections.namedtuple('Recipe', 'flags flip data_dir')
RECIPES = {
    'kitti': Recipe('--epochs 40 --batch-size 4 --learning-rate 3e-4 --lr-schedule poly --warmup 0.05', True,
                    cli.DEFAULT_DATA),
    'camvid': Recipe('--dataset camvid --data-dir data/CamVid --image-shape 352 480 --epochs 33 --batch-size 4 '
                     '--learning-rate 1e-4 --lr-schedule constant --warmup 0', False, 'data/CamVid'),
    'sample': Recipe('--data-dir data/sample --epochs 4 --batch-size 2 --repeat 4 --learning-rate 3e-4 '
                     '--lr-schedule constant --warmup 0', False, 'data/sample'),
}
RESULTS_DIR = os.path.join('docs', 'results')
