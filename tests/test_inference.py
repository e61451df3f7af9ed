"""The exported frozen graph: same probabilities as the checkpoint, no dropout or optimizer left."""
import os

import numpy as np

from conftest import SAMPLE
from roadseg import kitti
from roadseg.inference import FROZEN, TrainedModel
from roadseg.tfcompat import tf


def test_frozen_graph_matches_checkpoint(tiny_run):
    frozen = os.path.join(tiny_run, 'best', FROZEN)
    assert os.path.exists(frozen), 'training exports the frozen graph of its best checkpoint'
    images = [kitti.read_rgb(os.path.join(SAMPLE, 'testing', 'image_2', n)) for n in ('um_000000.png', 'uu_000001.png')]
    fast = TrainedModel(tiny_run)
    assert fast.frozen
    ops = {op.type for op in fast.graph.get_operations()}
    assert not ops & {'VariableV2', 'VarHandleOp', 'RandomUniform', 'ApplyAdam', 'PlaceholderWithDefault'}
    got = list(fast.predict(images))
    fast.close()
    os.utime(frozen, (0, 0))  # older than the checkpoint: the checkpoint graph is used instead
    slow = TrainedModel(tiny_run)
    assert not slow.frozen
    want = list(slow.predict(images))
    slow.close()
    os.utime(frozen, None)
    for g, w, im in zip(got, want, images):
        assert g.shape == im.shape[:2]
        assert np.abs(g - w).max() < 1e-5
