from segkit.constants import (
    IGNORE_INDEX,
    IMAGENET_MEAN,
    IMAGENET_STD,
    NUM_VOC_CLASSES,
    VOC_CLASSES,
    VOC_PALETTE,
)


def test_voc_classes():
    assert NUM_VOC_CLASSES == 21
    assert VOC_CLASSES[0] == "background"
    assert VOC_CLASSES[15] == "person"
    assert VOC_CLASSES[-1] == "tvmonitor"
    assert len(set(VOC_CLASSES)) == 21


def test_voc_palette_known_entries():
    # Entries of the official VOCdevkit palette (VOCcode/VOClabelcolormap.m).
    assert len(VOC_PALETTE) == 256
    assert VOC_PALETTE[0] == (0, 0, 0)
    assert VOC_PALETTE[1] == (128, 0, 0)
    assert VOC_PALETTE[15] == (192, 128, 128)  # person
    assert VOC_PALETTE[20] == (0, 64, 128)  # tvmonitor
    assert VOC_PALETTE[IGNORE_INDEX] == (224, 224, 192)
    assert len(set(VOC_PALETTE[:21])) == 21


def test_imagenet_stats():
    assert IGNORE_INDEX == 255
    assert len(IMAGENET_MEAN) == len(IMAGENET_STD) == 3
    assert all(0 < s < 1 for s in IMAGENET_STD)
