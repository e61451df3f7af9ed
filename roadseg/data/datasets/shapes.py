"""Synthetic shapes: circles, triangles, squares and pentagons on noise, generated in memory from a seed; as
one class per pixel, or as overlapping translucent shapes with one label each plus "unknown" concave blobs
(multi-label)."""
import math

import numpy as np
from PIL import Image, ImageDraw

from .base import SELECT, SPLITS, Dataset, Sample

STREAMS = SPLITS + (SELECT,)  # a split's random stream is its position here

CORNERS = {2: 3, 3: 4, 4: 5}  # class index -> polygon corners (1 = circle)
UNKNOWN = 5  # multi-label: a concave blob, none of the four shapes
KEPT_SPLITS = ('val', SELECT)  # drawn once and kept: scored after every epoch (320 at 128x128: 42 MB)
SHAPES_PER_IMAGE = (2, 4)  # multi-label: fewest and most shapes in an image (Shapes' train_shapes: in training ones)


def render(size, seed, split, index):
    """(uint8 RGB (H, W, 3), uint8 class map (H, W)) of sample `index` of `split`; size = (H, W).

    Uniform noise, then 1-4 shapes of random class, radius (10-25% of the shorter side), position,
    rotation and solid colour (later shapes cover earlier ones in image and label alike), then Gaussian
    noise (sigma 12) over the frame. The same arguments give the same sample (for one Pillow version).
    """
    h, w = size
    rng = np.random.RandomState([seed, STREAMS.index(split), index])
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


def _outline(cls, r, cx, cy, start, rng):
    """The polygon of a shape of class cls, or None: a circle. 2-4: regular with CORNERS[cls] corners on radius
    r; UNKNOWN: a concave blob of 5-7 lobes, tips at 0.8-1.0 r between notches at 0.4-0.6 r, so that no blob
    reads as a circle or a regular polygon (a convex blob of random radii can be a triangle or a square)."""
    if cls == 1:
        return None
    if cls == UNKNOWN:
        n = 2 * rng.randint(5, 8)
        radii = r * np.where(np.arange(n) % 2 == 0, rng.uniform(0.8, 1.0, n), rng.uniform(0.4, 0.6, n))
    else:
        n = CORNERS[cls]
        radii = np.full(n, r)
    angles = start + 2 * math.pi * np.arange(n) / n
    return [(cx + rk * math.cos(a), cy + rk * math.sin(a)) for rk, a in zip(radii, angles)]


def render_labels(size, seed, split, index, grayscale=False, alpha=0.6, shapes=SHAPES_PER_IMAGE):
    """(uint8 RGB (H, W, 3), uint8 labels (H, W, 5): circle, triangle, square, pentagon, unknown) of multi-label
    sample `index` of `split`: uniform noise, then shapes[0] to shapes[1] shapes (2-4) of random kind (radius
    15-30% of the shorter side, so they often overlap), each blended over what lies below at opacity alpha
    (every shape stays visible where they overlap, and every pixel of a shape is labelled with it), then
    Gaussian noise (sigma 12); grayscale: the image in grey (three equal channels)."""
    h, w = size
    rng = np.random.RandomState([seed, STREAMS.index(split), index, 1])
    image = rng.randint(0, 256, (h, w, 3)).astype(np.float32)
    labels = np.zeros((h, w, UNKNOWN), np.uint8)
    for _ in range(rng.randint(shapes[0], shapes[1] + 1)):
        cls = rng.randint(1, UNKNOWN + 1)
        r = rng.uniform(0.15, 0.3) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        outline = _outline(cls, r, cx, cy, rng.uniform(0, 2 * math.pi), rng)
        mask = Image.new('L', (w, h), 0)
        draw = ImageDraw.Draw(mask)
        if outline is None:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        else:
            draw.polygon(outline, fill=1)
        color = rng.randint(0, 256, 3)
        box = mask.getbbox()  # (x0, y0, x1, y1) of the shape's pixels: blending only there is what keeps it fast
        if box is None:
            continue
        inside = np.asarray(mask.crop(box)) > 0
        patch, members = image[box[1]:box[3], box[0]:box[2]], labels[box[1]:box[3], box[0]:box[2], cls - 1]
        patch[inside] = (1 - alpha) * patch[inside] + alpha * color
        members[inside] = 1
    image = np.clip(np.rint(image + rng.normal(0, 12, (h, w, 3))), 0, 255).astype(np.uint8)
    if grayscale:
        image = np.repeat(np.asarray(Image.fromarray(image).convert('L'))[..., None], 3, axis=-1)
    return image, labels


class Shapes(Dataset):
    """A zero-download set; no files. Sample ids are 'shapes_<split>_<index>'. multi_label: overlapping shapes,
    one label each, plus "unknown" concave blobs (render_labels); grayscale: grey images (multi-label only);
    train_shapes: (fewest, most) shapes in a training image (multi-label only; the other splits keep
    SHAPES_PER_IMAGE). A fourth count adds a selection split: its images choose the kept epoch, and val is then
    only reported."""
    name = 'shapes'
    generated = True
    class_names = ['background', 'circle', 'triangle', 'square', 'pentagon']
    colors = [(64, 64, 64), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200)]

    def __init__(self, data_dir=None, size=(128, 128), counts=(256, 32, 16), seed=0, multi_label=False,
                 grayscale=False, train_shapes=SHAPES_PER_IMAGE):
        """size: (H, W) in pixels; counts: samples in train, val, test[, select]; data_dir is not used."""
        self.data_dir = data_dir
        self.size = tuple(size)
        self.counts = dict(zip(STREAMS, counts))
        self.splits = STREAMS[:len(counts)]
        self.seed = seed
        self.multi_label, self.grayscale = multi_label, grayscale
        self.train_shapes = tuple(train_shapes)
        self._kept = {}  # (sample id, (H, W)) -> a drawn sample of KEPT_SPLITS (load_for)
        if multi_label:
            self.class_names = self.class_names[1:] + ['unknown']
            self.colors = self.colors[1:] + [(145, 30, 180)]

    def __getstate__(self):  # what a drawing process receives (batches.TrainingSet): no kept samples
        return dict(self.__dict__, _kept={})

    def list_split(self, split):
        return [Sample(sid, sid) for sid in ('shapes_{}_{:06d}'.format(split, i) for i in range(self.counts[split]))]

    def load(self, sample):
        return self.load_for(sample, self.size)

    def load_for(self, sample, image_shape):
        """The sample drawn at image_shape (H, W): its noise and edges at that size, not a resized drawing. A
        validation or selection sample, scored every epoch, is drawn once and kept (read-only) while the dataset
        lives."""
        _, split, index = sample.image.split('_')
        key = (sample.image, tuple(image_shape))
        if key in self._kept:
            return self._kept[key]
        if self.multi_label:
            drawn = render_labels(tuple(image_shape), self.seed, split, int(index), self.grayscale,
                                  shapes=self.train_shapes if split == 'train' else SHAPES_PER_IMAGE)
        else:
            drawn = render(tuple(image_shape), self.seed, split, int(index))
        if split in KEPT_SPLITS:
            for array in drawn:
                array.setflags(write=False)
            self._kept[key] = drawn
        return drawn

    def load_label(self, sample):
        return self.load(sample)[1]
