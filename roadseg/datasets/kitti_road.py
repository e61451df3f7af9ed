"""KITTI Road (data_road): background and road from the mask colours, the fixed validation and selection splits."""
import os

from .. import kitti
from .base import SELECT, SPLITS, Dataset, Sample, unlabelled


class KittiRoad(Dataset):
    """training/image_2 + training/gt_image_2 (um_road_*.png): val = the images in splits/val.txt (the report
    split), select = those in splits/select.txt (to pick the kept checkpoint), train = the rest; test =
    testing/image_2 ([] without it). Mask colours other than the two classes' are ignored."""
    name = 'kitti_road'
    class_names = ['background', 'road']
    colors = [kitti.BACKGROUND, kitti.ROAD]
    layout = (os.path.join('training', 'image_2'), os.path.join('training', 'gt_image_2'))
    splits = SPLITS + (SELECT,)

    def __init__(self, data_dir, split_file=kitti.SPLIT_FILE, select_file=kitti.SELECT_FILE):
        super(KittiRoad, self).__init__(data_dir)
        self.split_file = split_file
        self.select_file = select_file

    @property
    def split_paths(self):
        return (self.split_file, self.select_file)

    def list_split(self, split):
        if split == 'test':
            test_dir = os.path.join(self.data_dir, 'testing', 'image_2')
            return unlabelled(kitti.image_files(test_dir)) if os.path.isdir(test_dir) else []
        pairs = kitti.list_training_pairs(os.path.join(self.data_dir, 'training'))
        train, val, select = kitti.split_pairs(pairs, *kitti.read_splits(self.split_file, self.select_file))
        return [Sample(image, mask) for image, mask in {'train': train, 'val': val, SELECT: select}[split]]

    def load_label(self, sample):
        return kitti.mask_to_classes(kitti.read_rgb(sample.label), sample.label)

    def category(self, sample):
        """'um', 'umm' or 'uu' from the image file name."""
        return kitti.category(sample.image)
