"""The network: the VGG16 encoder and its SavedModel (vgg.py), built from the first weight source available
(vgg_sources.py, vgg_weights.py), its tensor and decoder names (names.py) and output heads (heads.py), the training and
inference graph (graph.py), the graph frozen for inference (freeze.py), batched prediction at any frame size
(prediction.py)."""
