"""The explorer's drawings on a picture: the receptive-field box of a clicked output pixel
(``draw_rf_box``), the logit grid (``draw_logit_grid``), both from ``segkit.analysis.pixel_rf``,
and the ERF of that pixel as a log-scale heat map (``heatmap_rgb``, from
``segkit.analysis.erf.PixelGradients``). (H, W, 3) uint8 in, a new (H, W, 3) uint8 out.
"""

from __future__ import annotations

import numpy as np
import torch

from segkit.analysis.erf import ERF
from segkit.analysis.pixel_rf import OutputGrid, PixelRF

#: Colour of the receptive-field box (``draw_rf_box``) and of the logit grid (``draw_logit_grid``).
BOX_COLOUR = (255, 255, 0)
GRID_COLOUR = (255, 255, 255)


def draw_rf_box(
    image: np.ndarray, rf: PixelRF, *, colour: tuple[int, int, int] = BOX_COLOUR
) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with ``rf``'s box outlined and its pixel marked (a
    global field: the whole image framed)."""
    from PIL import Image, ImageDraw

    height, width_px = image.shape[:2]
    if rf.box[2] >= height or rf.box[3] >= width_px:
        raise ValueError(f"box {rf.box} does not fit the {height} x {width_px} image")
    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    draw = ImageDraw.Draw(picture)
    width = max(1, round(max(height, width_px) / 200))
    top, left, bottom, right = rf.box
    draw.rectangle([left, top, right, bottom], outline=colour, width=width)
    row, col = rf.pixel
    arm = 3 * width + 2
    draw.line([col - arm, row, col + arm, row], fill=colour, width=width)
    draw.line([col, row - arm, col, row + arm], fill=colour, width=width)
    return np.asarray(picture)


def draw_logit_grid(
    image: np.ndarray,
    grid: OutputGrid,
    *,
    colour: tuple[int, int, int] = GRID_COLOUR,
    alpha: float = 0.35,
) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with the cell borders of the logit grid blended in
    (weight ``alpha``): lines half-way between neighbouring logit centres ``t * stride``, i.e.
    the pixels whose prediction comes mostly from one logit lie in one cell."""
    if image.shape[:2] != grid.image_size:
        raise ValueError(f"image {image.shape[:2]} is not the grid's image size {grid.image_size}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = image[..., :3].astype(np.float32)
    lines = np.zeros(image.shape[:2], dtype=bool)
    for axis, (n, stride) in enumerate(zip(grid.grid, grid.stride, strict=True)):
        size = grid.image_size[axis]
        borders = [round((t + 0.5) * stride) for t in range(n - 1)]
        borders = [b for b in borders if 0 <= b < size]
        if axis == 0:
            lines[borders, :] = True
        else:
            lines[:, borders] = True
    out[lines] = (1.0 - alpha) * out[lines] + alpha * np.asarray(colour, dtype=np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


#: Colours of the radius circles in ``heatmap_rgb``: r50, r90.
RADIUS_COLOURS: tuple[tuple[int, int, int], ...] = ((0, 255, 255), (255, 255, 255))


def heatmap_rgb(
    erf: ERF, image: np.ndarray | None = None, *, decades: float = 3.0, alpha: float = 0.65
) -> np.ndarray:
    """(H, W, 3) uint8 picture of ``erf``: log10 of the gradient mass relative to its peak, the
    top ``decades`` decades in matplotlib's ``inferno`` colours (below: black), blended with
    weight ``alpha`` onto ``image`` (H, W, 3) uint8 when given; the r50 (cyan) and r90 (white)
    circles around the pixel, which is marked with a cross.

    Log scale: a trained network's ERF is sharply peaked, a linear map shows only the peak.
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    if decades <= 0:
        raise ValueError(f"decades must be > 0, got {decades}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    mass = erf.grad.double()
    rel = torch.log10(mass / mass.max()).clamp(min=-decades)  # log10(0) = -inf -> -decades
    level = ((rel + decades) / decades).numpy()
    colours = colormaps["inferno"](level)[..., :3] * 255.0
    if image is not None:
        if image.shape[:2] != mass.shape:
            raise ValueError(f"image {image.shape[:2]} and ERF {tuple(mass.shape)} differ in size")
        colours = alpha * colours + (1.0 - alpha) * image[..., :3].astype(np.float64)
    picture = Image.fromarray(np.clip(colours + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    row, col = erf.centre
    width = max(1, round(max(mass.shape) / 256))
    for radius, colour in zip((erf.r50, erf.r90), RADIUS_COLOURS, strict=True):
        r = max(radius, 1.0)
        draw.ellipse([col - r, row - r, col + r, row + r], outline=colour, width=width)
    arm = 3 * width + 2
    draw.line([col - arm, row, col + arm, row], fill=(0, 255, 0), width=width)
    draw.line([col, row - arm, col, row + arm], fill=(0, 255, 0), width=width)
    return np.asarray(picture)


__all__ = [
    "BOX_COLOUR",
    "GRID_COLOUR",
    "RADIUS_COLOURS",
    "draw_logit_grid",
    "draw_rf_box",
    "heatmap_rgb",
]
