"""The dataset contract: ClassInfo, the registry, reader options, the SplitDataset protocol."""

from __future__ import annotations

import pytest

from segkit.constants import IGNORE_INDEX
from segkit.data import SegDataModule, VOCSegmentation
from segkit.data.classes import VOID_COLOUR, ClassInfo, label_colormap
from segkit.data.registry import (
    DatasetEntry,
    SplitDataset,
    dataset_entry,
    dataset_names,
    reader_options,
    register_dataset,
)
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


def test_registry_names_and_unknown_name():
    assert {"voc", "voc_aug", "synthetic", "folder"} <= set(dataset_names())
    with pytest.raises(ValueError, match=r"data.dataset must be one of voc, .*got 'coco'"):
        dataset_entry("coco")


def test_register_refuses_a_taken_name():
    entry = dataset_entry("voc")
    assert register_dataset(entry) is entry  # the same entry again: no-op
    with pytest.raises(ValueError, match="'voc' is already registered"):
        register_dataset(DatasetEntry("voc", "elsewhere", "another VOC"))


def test_missing_reader_module_is_one_line():
    entry = DatasetEntry("nowhere", "segkit.data.no_such_reader", "nothing")
    with pytest.raises(ValueError, match="reader segkit.data.no_such_reader is not in this"):
        entry.module()


def test_reader_options():
    entry = dataset_entry("synthetic")
    assert reader_options(entry, {"num_train": 3}).num_train == 3
    with pytest.raises(ValueError, match="data.options.bogus is not an option of data.dataset="):
        reader_options(entry, {"bogus": 1})
    with pytest.raises(ValueError, match="takes no data.options"):
        reader_options(dataset_entry("voc"), {"a": 1})


def test_voc_reader_follows_the_split_protocol(voc_root):
    ds = VOCSegmentation(voc_root, "train", num_classes=5)
    assert isinstance(ds, SplitDataset)
    dm = SegDataModule(dataset="synthetic", root=voc_root.parent / "syn", num_workers=0,
                       synthetic=None, options={"num_train": 2, "num_val": 1, "min_size": 40,
                                                "max_size": 48, "num_classes": 3})  # fmt: skip
    assert dm.num_classes == 3 and dm.classes.names[0] == "background"
    dm.prepare_data()
    val = dm.split_dataset("val")
    assert isinstance(val, SplitDataset) and val.classes == dm.classes and len(val) == 1
