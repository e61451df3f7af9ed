"""The network: the VGG16 encoder (vgg.py, vgg_weights.py), its output heads and tensor names (heads.py),
the training and inference graph (graph.py)."""
