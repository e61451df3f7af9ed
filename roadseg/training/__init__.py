"""A training run: the run as steps (train.py), validation, checkpoints, data-parallel ranks (Horovod)."""
