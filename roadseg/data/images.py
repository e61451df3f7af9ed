"""Reading images: the image files of a folder, and one reader that turns any unreadable image into one error.

Every image the project reads (training and validation data, masks, --predict folders) goes through
decode_image, so a missing, empty, damaged or over-limit file is one InputError naming it.
"""
import os

import numpy as np
from PIL import Image

from ..system.files import InputError

IMAGE_EXTS = ('.png', '.jpg', '.jpeg')


def image_files(folder):
    """Sorted image paths in folder; other files (.DS_Store, Thumbs.db, ...) are skipped with a note."""
    if not os.path.isdir(folder):
        raise InputError('folder not found: {}'.format(folder))
    images, skipped = [], []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not name.startswith('.') and name.lower().endswith(IMAGE_EXTS):
            images.append(path)
        else:
            skipped.append(name)
    if skipped:
        print('note: skipping {} non-image entries in {}: {}'.format(
            len(skipped), folder, ', '.join(skipped[:3]) + (' ...' if len(skipped) > 3 else '')))
    return images


def decode_image(path, decode):
    """decode(the opened, loaded PIL image) for the file at path; InputError naming the file when it is
    missing, empty, not a readable image, or over Pillow's pixel limit (Image.MAX_IMAGE_PIXELS)."""
    try:
        with Image.open(path) as img:
            img.load()
            return decode(img)
    except FileNotFoundError:
        raise InputError('file not found: {}'.format(path))
    except Image.DecompressionBombError as e:
        raise InputError('{}: too large to read ({})'.format(path, e))
    except (OSError, ValueError, SyntaxError) as e:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        why = 'empty file (0 bytes)' if size == 0 else 'not a readable image ({})'.format(e)
        raise InputError('{}: {}'.format(path, why))


def _rgb(img):
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        arr = np.asarray(img, dtype=np.uint32)
        img = Image.fromarray((arr >> 8 if arr.max() > 255 else arr).astype(np.uint8))
    return np.asarray(img.convert('RGB'))


def read_image(path):
    """uint8 (H, W, 3) RGB from any PNG/JPEG: RGBA drops alpha, grey is replicated, 16-bit is scaled."""
    return decode_image(path, _rgb)
