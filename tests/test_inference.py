"""Segmenter's loading: the frozen graph training wrote when current, else the checkpoint frozen in memory."""
import os
import shutil

import numpy as np

from conftest import road_test_images
from roadseg import task
from roadseg.evaluation.palette import road_overlay as overlay
from roadseg.model.freeze import TRAINING_OPS
from roadseg.runs import FROZEN, TrainedRun
from roadseg.serving.export import freeze_checkpoint
from roadseg.serving.inference import Segmenter
from roadseg.system.tfcompat import tf


def test_frozen_graph_matches_checkpoint(learned_run, road_data):
    frozen = os.path.join(learned_run, 'best', FROZEN)
    assert os.path.exists(frozen), 'training exports the frozen graph of its best checkpoint'
    images = [image for _, image, _ in road_test_images(road_data)[:2]]
    images[1] = images[1][3:50, 20:177]  # another size
    with Segmenter(learned_run) as fast:
        assert fast.frozen
        ops = {op.type for op in fast.graph.get_operations()}
        got = fast.predict(images)[0]
    assert not ops & (TRAINING_OPS | {'PlaceholderWithDefault', 'ApplyAdam'})
    stamp = os.path.getmtime(frozen)
    try:
        os.utime(frozen, (0, 0))  # older than the checkpoint: the checkpoint graph is used instead
        with Segmenter(learned_run) as slow:
            assert not slow.frozen
            want = slow.predict(images)[0]
    finally:
        os.utime(frozen, (stamp, stamp))
    for g, w, im in zip(got, want, images):
        assert g.shape == im.shape[:2] + (2,)
        assert np.abs(g - w).max() < 1e-5
        assert 0.05 < np.mean(w[..., 1] > 0.5) < 0.95, 'road in the image, not everywhere'


def test_older_frozen_graph_is_passed_over(tmp_path, tiny_run, capsys):
    """A frozen graph of an earlier version (road_prob only) gives way to the checkpoint, with a note."""
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('test_images', 'logs', 'export*'))
    graph_def = freeze_checkpoint(tf.train.latest_checkpoint(os.path.join(run, 'best')), TrainedRun(run).image_shape,
                                  task.kitti())
    for node in graph_def.node:
        if node.name == 'probabilities':
            node.name = 'road_prob'
        node.input[:] = ['road_prob' if name == 'probabilities' else name for name in node.input]
    with open(os.path.join(run, 'best', FROZEN), 'wb') as f:
        f.write(graph_def.SerializeToString())
    with Segmenter(run) as seg:
        assert not seg.frozen
    assert 'has no probabilities output (an older export); using the checkpoint' in capsys.readouterr().out


def test_overlay_blends_above_threshold():
    image = np.full((2, 2, 3), 100, np.uint8)
    prob = np.array([[0.9, 0.5], [0.2, 0.51]], np.float32)
    out = overlay(image, prob)
    assert out[0, 0].tolist() == [50, 177, 50] and out[1, 1].tolist() == [50, 177, 50]
    assert (out[0, 1] == 100).all() and (out[1, 0] == 100).all()
