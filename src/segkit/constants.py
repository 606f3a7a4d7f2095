"""Project-wide constants: Pascal VOC classes and palette, the void label, ImageNet statistics."""

from __future__ import annotations

#: Label value that marks void / "don't care" pixels (VOC object borders, padding). Never scored.
IGNORE_INDEX: int = 255

#: The 21 Pascal VOC 2012 segmentation classes, index = label value.
VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
NUM_VOC_CLASSES: int = len(VOC_CLASSES)


def _voc_colormap(n: int = 256) -> tuple[tuple[int, int, int], ...]:
    """The standard VOC palette: bits of the label index spread over the high bits of R, G, B."""
    colours = []
    for label in range(n):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


#: 256-entry VOC colour palette (RGB); entry 255 (void) is (224, 224, 192).
VOC_PALETTE: tuple[tuple[int, int, int], ...] = _voc_colormap()

#: ImageNet statistics for 0..1-scaled RGB images (what torchvision/timm weights expect).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
