"""KITTI Road (data_road): background and road from the mask colours, the fixed validation split."""
import os

from .. import kitti
from .base import Dataset, Sample, check_split, unlabelled


class KittiRoad(Dataset):
    """training/image_2 + training/gt_image_2 (um_road_*.png); train/val from splits/val.txt;
    test = testing/image_2 ([] without it). Mask colours other than the two classes' are ignored."""
    name = 'kitti_road'
    class_names = ['background', 'road']
    colors = [kitti.BACKGROUND, kitti.ROAD]
    layout = (os.path.join('training', 'image_2'), os.path.join('training', 'gt_image_2'))

    def __init__(self, data_dir, split_file=kitti.SPLIT_FILE):
        super(KittiRoad, self).__init__(data_dir)
        self.split_file = split_file

    def samples(self, split):
        check_split(split)
        if split == 'test':
            test_dir = os.path.join(self.data_dir, 'testing', 'image_2')
            return unlabelled(kitti.image_files(test_dir)) if os.path.isdir(test_dir) else []
        pairs = kitti.list_training_pairs(os.path.join(self.data_dir, 'training'))
        train, val = kitti.split_pairs(pairs, kitti.read_split(self.split_file))
        return [Sample(image, mask) for image, mask in (train if split == 'train' else val)]

    def load_label(self, sample):
        return kitti.mask_to_classes(kitti.read_rgb(sample.label), sample.label)

    def category(self, sample):
        """'um', 'umm' or 'uu' from the image file name."""
        return kitti.category(sample.image)
