"""What several benchmarks share: the machine line of their reports and VOC-sized test images."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def cpu_name() -> str:
    """The CPU model (``lscpu``), else whatever ``platform`` knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def machine() -> str:
    """``<CPU>, <n> logical cores, Python <version>``."""
    return f"{cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def voc_sized_sample(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``i``: RGB uint8 (H, W, 3) and mask uint8 (H, W) at 500x375 (375x500 every third),
    textured synthetic content with up to 6 objects of 11 classes (imports cv2 and segkit.data)."""
    import cv2

    from segkit.data.synthetic import SyntheticSpec, render_sample

    spec = SyntheticSpec(seed=7, min_size=375, max_size=500, num_classes=11, max_objects=6)
    image, mask = render_sample(spec, "train", i)
    h, w = (375, 500) if i % 3 else (500, 375)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return image, cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
