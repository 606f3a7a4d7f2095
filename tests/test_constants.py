from segkit.constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD


def test_imagenet_stats():
    assert IGNORE_INDEX == 255
    assert len(IMAGENET_MEAN) == len(IMAGENET_STD) == 3
    assert all(0 < s < 1 for s in IMAGENET_STD)
