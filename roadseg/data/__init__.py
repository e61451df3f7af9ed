"""Input data: dataset formats (datasets/), image reading (images.py), splits and training batches."""
