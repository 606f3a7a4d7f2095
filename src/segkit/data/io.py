"""Reading samples (images, label PNGs) from disk, with the cheap checks that turn bad input into clear errors.

Every check here runs per sample on the hot path, so each is a single vectorised numpy test; the error
messages name the offending file and say how to fix it.

Orientation: images are decoded by OpenCV, which applies an EXIF ``Orientation`` tag (a phone photo
stored landscape and tagged "rotate 90" comes out portrait, as every viewer shows it); label masks
are read by Pillow as stored, never rotated (label PNGs carry no orientation to honour). So an
image's size is its size *after* the EXIF orientation (``read_image_size`` says the same as
``read_image``), and a mask must match the image as displayed; a mask drawn on the stored pixels of
a rotated image is refused with the EXIF orientation named as the cause.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo, label_colormap

# cv2 threads fight the DataLoader workers for the same cores; one thread per worker is faster overall.
cv2.setNumThreads(0)
# OpenCV >= 4.10 decodes straight to RGB, saving a full-image colour conversion per sample.
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", cv2.IMREAD_COLOR)
#: Formats (PIL's names) whose EXIF orientation ``cv2.imdecode`` applies (not TIFF's).
_EXIF_TURNED = ("JPEG", "PNG", "WEBP")


def read_image(path: str | Path) -> np.ndarray:
    """Decode a JPEG/PNG to an RGB uint8 array of shape (H, W, 3); missing, corrupt or truncated
    files raise.

    The file is read into memory and decoded with ``cv2.imdecode``: unlike ``cv2.imread``, which
    pads a truncated JPEG with grey and only prints "Premature end of JPEG file", the in-memory
    decoder fails on it, so a half-extracted image cannot slip into training.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise _missing_image(path) from None
    except OSError as err:  # a folder, no permission...
        raise _unreadable_image(path, err) from None
    image = cv2.imdecode(data, _IMREAD_RGB) if data.size else None
    if image is None or image.ndim != 3:
        raise _corrupt_image(path, "e.g. truncated")
    return image if _IMREAD_RGB != cv2.IMREAD_COLOR else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of a JPEG/PNG from its header (nothing decoded) -- the shape ``read_image``
    returns: OpenCV applies the EXIF orientation of a JPEG, PNG or WebP, so a quarter turn
    (orientations 5-8) swaps the sides. Same errors as ``read_image`` for a missing or
    unreadable file (a truncated body is only caught by ``read_image``)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.format in _EXIF_TURNED and _orientation(image) in TRANSPOSING:
                width, height = height, width
    except FileNotFoundError:
        raise _missing_image(path) from None
    except UnidentifiedImageError:
        raise _corrupt_image(path, "not an image") from None
    except OSError as err:
        raise _unreadable_image(path, err) from None
    return int(height), int(width)


#: The EXIF tag of the orientation, and its values that swap width and height (transpose,
#: rotate 90 / 270, transverse).
EXIF_ORIENTATION = 0x0112
TRANSPOSING = (5, 6, 7, 8)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = as stored) from what ``Image.open`` read: the ``exif`` block of a
    JPEG, PNG or WebP header, a TIFF's tags. ``getexif()`` would decode a whole PNG to look for a
    late ``eXIf`` chunk."""
    raw = image.info.get("exif")
    if raw:
        exif = Image.Exif()
        exif.load(raw)
        return int(exif.get(EXIF_ORIENTATION, 1) or 1)
    tags = getattr(image, "tag_v2", None)  # TIFF
    return int(tags.get(EXIF_ORIENTATION, 1) or 1) if tags is not None else 1


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation of an image file (1 when none, or when it cannot be read)."""
    try:
        with Image.open(path) as image:
            return _orientation(image)
    except (OSError, SyntaxError, ValueError):
        return 1


def _missing_image(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"image file {path} is missing: restore it or remove its id from the split list"
    )


def _unreadable_image(path: Path, err: OSError) -> ValueError:
    return ValueError(
        f"image file {path} cannot be read ({err.strerror or err}): fix the path or its "
        "permissions, or remove its id from the split list"
    )


def _corrupt_image(path: Path, detail: str) -> ValueError:
    return ValueError(
        f"image file {path} is unreadable or corrupt ({detail}): re-extract or re-copy it "
        "from the dataset's source, or remove its id from the split list"
    )


def read_mask(path: str | Path) -> np.ndarray:
    """Read a label PNG (palette or greyscale; pixel value = class index) as uint8 (H, W)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            # Palette ("P") images store the label index directly; "L" images store it as grey level.
            if img.mode not in ("P", "L"):
                raise ValueError(
                    f"mask file {path} has mode {img.mode!r}, expected a palette or greyscale PNG whose "
                    "pixel values are class indices: convert it (a colour mask: map each colour to "
                    "its class index) or regenerate it"
                )
            return np.array(
                img, dtype=np.uint8
            )  # a writable copy: torch and albumentations want one
    except FileNotFoundError:
        raise FileNotFoundError(
            f"mask file {path} is missing: restore it or remove its id from the split list"
        ) from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(
            f"mask file {path} is unreadable or corrupt ({err}): re-extract or regenerate it"
        ) from None


def check_sample(
    image: np.ndarray,
    mask: np.ndarray,
    num_classes: int,
    *,
    mask_path: str | Path,
    image_path: str | Path | None = None,
) -> None:
    """Raise a ValueError naming ``mask_path`` if the mask's size or values are invalid.

    Valid values are ``0..num_classes-1`` and ``IGNORE_INDEX`` (255). Cost: two vectorised comparisons over the mask.
    """
    check_mask_size(image.shape[:2], mask, mask_path=mask_path, image_path=image_path)
    check_mask_values(mask, num_classes, mask_path=mask_path)


def check_mask_size(
    image_hw: tuple[int, int],
    mask: np.ndarray,
    *,
    mask_path: str | Path,
    image_path: str | Path | None = None,
) -> None:
    """ValueError naming the file unless ``mask`` is (H, W) = ``image_hw`` (the image's size as
    loaded, after its EXIF orientation). With ``image_path``, a mismatch caused by the image's EXIF
    orientation is named as such (the file is only opened again on a mismatch)."""
    if tuple(image_hw) == mask.shape:
        return
    message = (
        f"mask file {mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image is "
        f"{image_hw[1]}x{image_hw[0]}"
    )
    orientation = exif_orientation(image_path) if image_path is not None else 1
    if orientation in TRANSPOSING:
        raise ValueError(
            f"{message} as displayed: the image {image_path} is stored "
            f"{image_hw[0]}x{image_hw[1]} with EXIF orientation {orientation} (rotated on load, "
            "as viewers show it; masks are not rotated). Rotate the mask to the image as "
            "displayed, or save the image with its pixels rotated and no EXIF orientation"
        )
    raise ValueError(f"{message}: masks must match their image size; fix or remove it")


def check_mask_values(mask: np.ndarray, num_classes: int, *, mask_path: str | Path) -> None:
    """ValueError naming the file and the bad values unless mask values are in 0..K-1 or 255."""
    # Two uint8 comparisons are ~10x cheaper than a bincount; the histogram is only built to word
    # the error message.
    if np.count_nonzero((mask >= num_classes) & (mask != IGNORE_INDEX)):
        counts = np.bincount(mask.ravel(), minlength=256)
        bad = np.flatnonzero(counts[num_classes:IGNORE_INDEX]) + num_classes
        raise ValueError(
            f"mask file {mask_path} has label values {bad.tolist()} outside 0..{num_classes - 1} and "
            f"{IGNORE_INDEX} (void): fix the mask, or the class list (num_classes, the "
            "classes file)"
        )


def save_mask(path: str | Path, mask: np.ndarray, classes: ClassInfo | None = None) -> None:
    """Write a uint8 (H, W) label map as a palette PNG (mode "P": pixel value = label) in the
    colours of ``classes`` (None: the DeepLab label colormap, VOC's palette)."""
    table = label_colormap(256) if classes is None else classes.colour_table()
    img = Image.fromarray(mask.astype(np.uint8, copy=False))  # mode "L"
    img.putpalette([c for rgb in table for c in rgb])
    img.save(path, optimize=False)
