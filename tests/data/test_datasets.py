"""The dataset contract: ClassInfo, a dataset object over SegSplit."""

from __future__ import annotations

import pytest

from segkit.constants import IGNORE_INDEX
from segkit.data import SegDataModule, SegSplit, Synthetic, voc_split
from segkit.data.classes import VOID_COLOUR, ClassInfo, label_colormap
from segkit.data.voc import VOC_CLASSES, VOC_INFO


def test_class_info_derives_count_and_default_palette():
    info = ClassInfo(names=("sky", "road", "car"))
    assert info.num_classes == 3 and info.void == IGNORE_INDEX
    assert info.palette == label_colormap(3)
    table = info.colour_table()
    assert len(table) == 256 and table[:3] == info.palette and table[IGNORE_INDEX] == VOID_COLOUR
    assert ClassInfo.from_dict(info.to_dict()) == info


def test_voc_metadata():
    # Entries of the official VOCdevkit palette (VOCcode/VOClabelcolormap.m).
    assert VOC_CLASSES[0] == "background" and VOC_CLASSES[-1] == "tvmonitor"
    assert label_colormap()[1] == (128, 0, 0) and len(set(label_colormap()[:21])) == 21
    assert VOC_INFO.num_classes == 21 and VOC_INFO.names == VOC_CLASSES
    assert VOC_INFO.names[15] == "person" and VOC_INFO.palette[15] == (192, 128, 128)
    assert VOC_INFO.palette[20] == (0, 64, 128) and VOC_INFO.background == 0
    assert VOC_INFO.colour_table()[IGNORE_INDEX] == (224, 224, 192)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ()}, "needs 1 to 255 classes"),
        ({"names": ("a", "a")}, "must be unique, repeated: \\['a'\\]"),
        ({"names": ("a", "")}, "class 1 needs a non-empty name"),
        ({"names": ("a", "b"), "palette": ((0, 0, 0),)}, "has 1 colours for 2 classes"),
        ({"names": ("a",), "palette": ((0, 0, 256),)}, "palette entry 0 must be \\[R, G, B\\]"),
        ({"names": ("a", "b"), "void": 1}, "void value must be in 2..255"),
        ({"names": ("a", "b"), "background": 2}, "background must be a class index 0..1"),
    ],
)
def test_class_info_refuses_bad_metadata(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassInfo(**kwargs)


def test_a_new_dataset_is_one_small_class(tmp_path):
    """The layout is all a dataset gives: SegSplit loads, checks and maps (here a VOC-style tree
    with its own classes, and the data check works on it unchanged)."""
    from dataclasses import dataclass
    from pathlib import Path

    import cv2
    import numpy as np

    from segkit.data import Files, Layout, SegDataset, check_datasets, save_mask

    (tmp_path / "img").mkdir()
    (tmp_path / "lbl").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "img" / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
        save_mask(tmp_path / "lbl" / f"{i}.png", np.full((8, 8), i, np.uint8))

    @dataclass(frozen=True)
    class Tiny(SegDataset):
        root: Path

        @property
        def classes(self) -> ClassInfo:
            return ClassInfo(names=("a", "b"), source="Tiny")

        def layout(self, name: str) -> Layout:
            return Layout(["0", "1"], images=Files(self.root / "img", ".png"),
                          masks=Files(self.root / "lbl", ".png"), split_path=self.root)  # fmt: skip

    split = Tiny(tmp_path).split("val")
    assert isinstance(split, SegSplit) and len(split) == 2 and split.classes.names == ("a", "b")
    assert int(split[1]["mask"].max()) == 1 and not check_datasets([split]).defects


def test_voc_split_and_the_synthetic_dataset(voc_root):
    ds = voc_split(voc_root, "train", num_classes=5)
    assert isinstance(ds, SegSplit)
    dataset = Synthetic(root=voc_root.parent / "syn", num_train=2, num_val=1, min_size=40,
                        max_size=48, num_classes=3)  # fmt: skip
    dm = SegDataModule(dataset=dataset, num_workers=0)
    assert dm.num_classes == 3 and dm.classes.names[0] == "background"
    dm.prepare_data()
    val = dataset.split("val")
    assert isinstance(val, SegSplit) and val.classes == dm.classes and len(val) == 1
