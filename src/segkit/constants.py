"""Project-wide constants: the void label, ImageNet statistics, image file endings.

Dataset classes and palettes belong to their dataset (``segkit.data.classes.ClassInfo``; VOC's in
``segkit.data.voc``)."""

from __future__ import annotations

#: Label value that marks void / "don't care" pixels in every mask a reader returns and every batch
#: (object borders, padding); never scored. Readers map their files' void value to it.
IGNORE_INDEX: int = 255

#: ImageNet statistics for 0..1-scaled RGB images (what torchvision/timm weights expect).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: The TF-slim / Inception preprocessing (pixels to [-1, 1]) that the Xception weights ported from
#: TensorFlow expect (timm's ``*.tf_in1k`` pretrained configs: mean = std = 0.5).
INCEPTION_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
INCEPTION_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)

#: File endings read as images (case-insensitive): a folder dataset's images, predict's inputs.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
