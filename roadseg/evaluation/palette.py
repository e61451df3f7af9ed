"""Colours on images: colour label maps, translucent overlays over a frame (a class map, one binary mask,
overlapping label masks), marks, a legend image."""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .metrics import THRESHOLD


def _table(colors, ignore_index, ignore_color):
    """(256, 3) uint8 lookup: class index -> colour, ignore_index -> ignore_color, anything else flagged."""
    table = np.zeros((256, 3), np.uint8)
    table[:len(colors)] = np.asarray(colors, np.uint8).reshape(-1, 3)
    table[ignore_index] = ignore_color
    return table


def _check(classes, num_colors, ignore_index):
    if classes.dtype != np.uint8:
        raise ValueError('class map must be uint8, got {}'.format(classes.dtype))
    top = int(classes[classes != ignore_index].max(initial=0)) if classes.size else 0
    if top >= num_colors:
        raise ValueError('class index {} has no colour ({} colours)'.format(top, num_colors))


def colorize(classes, colors, ignore_index=255, ignore_color=(0, 0, 0)):
    """uint8 (H, W) class map -> uint8 (H, W, 3) RGB: each class in its colour, ignore pixels ignore_color."""
    _check(classes, len(colors), ignore_index)
    return _table(colors, ignore_index, ignore_color)[classes]


def overlay(image, classes, colors, alpha=0.5, ignore_index=255):
    """uint8 (H, W, 3) frame with class colours blended in at opacity alpha; ignore pixels left untouched."""
    if image.shape[:2] != classes.shape:
        raise ValueError('image {} and class map {} differ in size'.format(image.shape[:2], classes.shape))
    painted = colorize(classes, colors, ignore_index).astype(np.float32)
    blend = image.astype(np.float32) * (1.0 - alpha) + painted * alpha
    keep = (classes == ignore_index)[..., None]
    return np.where(keep, image, np.clip(np.rint(blend), 0, 255)).astype(np.uint8)


def legend(class_names, colors, swatch=16, pad=6):
    """PIL RGB image: one row per class, a colour swatch (swatch px square) and the class name, on white."""
    if len(class_names) != len(colors):
        raise ValueError('{} class names but {} colours'.format(len(class_names), len(colors)))
    font = ImageFont.load_default()
    boxes = [font.getbbox(str(name)) for name in class_names]
    text_w = max([b[2] for b in boxes] + [1])
    row = max([swatch] + [b[3] for b in boxes])
    img = Image.new('RGB', (3 * pad + swatch + text_w, pad + len(class_names) * (row + pad)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, (name, color, box) in enumerate(zip(class_names, colors, boxes)):
        top = pad + i * (row + pad)
        y = top + (row - swatch) // 2
        draw.rectangle([pad, y, pad + swatch - 1, y + swatch - 1], fill=tuple(color), outline=(64, 64, 64))
        draw.text((2 * pad + swatch, top + (row - box[3]) // 2), str(name), fill=(0, 0, 0), font=font)
    return img


def road_overlay(image, prob, threshold=THRESHOLD, color=(0, 255, 0), alpha=0.5):
    """uint8 RGB image with pixels whose prob > threshold blended toward color (translucent)."""
    out = image.astype(np.float32)
    road = prob > threshold
    out[road] = (1 - alpha) * out[road] + alpha * np.asarray(color, np.float32)
    return out.astype(np.uint8)


def label_overlay(image, masks, colors, alpha=0.5, stripe=4):
    """uint8 (H, W, 3) image with each label's colour blended in where its boolean (H, W, C) mask is set; where
    labels overlap, diagonal stripes (stripe px wide) take each one's colour in turn, so all of them show."""
    count = masks.sum(axis=-1)
    ys, xs = np.indices(masks.shape[:2])
    turn = ((xs + ys) // stripe) % np.maximum(count, 1)  # which of the pixel's labels shows here
    rank = np.cumsum(masks, axis=-1) - 1                  # each set label's rank among the pixel's labels
    chosen = np.argmax(masks & (rank == turn[..., None]), axis=-1)
    painted = np.asarray(colors, np.float32)[chosen]
    blend = np.rint(image.astype(np.float32) * (1 - alpha) + painted * alpha)
    return np.where((count > 0)[..., None], np.clip(blend, 0, 255), image).astype(np.uint8)


def mark(image, marks):
    """uint8 RGB image with each (boolean (H, W) mask, colour) of marks blended in at half opacity."""
    out = image.astype(np.float32)
    for mask, color in marks:
        out[mask] = 0.5 * out[mask] + 0.5 * np.asarray(color, np.float32)
    return out.astype(np.uint8)
