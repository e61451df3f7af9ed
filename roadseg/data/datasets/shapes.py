"""Synthetic shapes: circles, triangles, squares and pentagons on noise, generated in memory from a seed."""
import math

import numpy as np
from PIL import Image, ImageDraw

from .base import SPLITS, Dataset, Sample

CORNERS = {2: 3, 3: 4, 4: 5}  # class index -> polygon corners (1 = circle)


def render(size, seed, split, index):
    """(uint8 RGB (H, W, 3), uint8 class map (H, W)) of sample `index` of `split`; size = (H, W).

    Uniform noise, then 1-4 shapes of random class, radius (10-25% of the shorter side), position,
    rotation and solid colour (later shapes cover earlier ones in image and label alike), then Gaussian
    noise (sigma 12) over the frame. The same arguments give the same sample (for one Pillow version).
    """
    h, w = size
    rng = np.random.RandomState([seed, SPLITS.index(split), index])
    image = Image.fromarray(rng.randint(0, 256, (h, w, 3)).astype(np.uint8))
    label = Image.new('L', (w, h), 0)
    for _ in range(rng.randint(1, 5)):
        cls = rng.randint(1, 5)
        r = rng.uniform(0.1, 0.25) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        start = rng.uniform(0, 2 * math.pi)
        color = tuple(int(c) for c in rng.randint(0, 256, 3))
        for canvas, fill in ((image, color), (label, cls)):
            draw = ImageDraw.Draw(canvas)
            if cls == 1:
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
            else:
                n = CORNERS[cls]
                draw.polygon([(cx + r * math.cos(start + 2 * math.pi * k / n),
                               cy + r * math.sin(start + 2 * math.pi * k / n)) for k in range(n)], fill=fill)
    noisy = np.asarray(image, np.float32) + rng.normal(0, 12, (h, w, 3))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8), np.asarray(label)


class Shapes(Dataset):
    """A zero-download multi-class set; no files. Sample ids are 'shapes_<split>_<index>'."""
    name = 'shapes'
    class_names = ['background', 'circle', 'triangle', 'square', 'pentagon']
    colors = [(64, 64, 64), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200)]

    def __init__(self, data_dir=None, size=(128, 128), counts=(256, 32, 16), seed=0):
        """size: (H, W) in pixels; counts: samples in train, val, test; data_dir is not used."""
        self.data_dir = data_dir
        self.size = tuple(size)
        self.counts = dict(zip(SPLITS, counts))
        self.seed = seed

    def list_split(self, split):
        return [Sample(sid, sid) for sid in ('shapes_{}_{:06d}'.format(split, i) for i in range(self.counts[split]))]

    def load(self, sample):
        _, split, index = sample.image.split('_')
        return render(self.size, self.seed, split, int(index))

    def load_label(self, sample):
        return self.load(sample)[1]
