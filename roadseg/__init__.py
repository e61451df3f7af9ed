"""FCN-8s road segmentation on KITTI: the parts behind main.py and helper.py, and the Python API.

`from roadseg import Segmenter` loads TensorFlow only then (PEP 562): `import roadseg` stays cheap.
"""
__all__ = ['Segmenter']


def __getattr__(name):
    if name == 'Segmenter':
        from .inference import Segmenter
        return Segmenter
    raise AttributeError('module {!r} has no attribute {!r}'.format(__name__, name))
