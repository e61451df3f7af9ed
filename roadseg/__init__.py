"""FCN-8s road segmentation on KITTI: the parts behind main.py and helper.py."""
