"""What the explorer writes about a design (facts markdown) and the exported comparison PNG."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from segkit.evaluation.overlay import legend_image
from segkit.explore.session import Design, DesignView, Session


def _si(n: float, unit: str) -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n:.0f} {unit}"


def facts_lines(
    design: Design, view: DesignView | None, pixel: tuple[int, int] | None
) -> list[str]:
    """Plain-text facts of ``design`` on the current image (and pixel), one fact group a line."""
    trained = design.trained_stride
    stride = f"output stride {design.output_stride}" + (
        f" (trained at {trained})" if trained and trained != design.output_stride else ""
    )
    miou = (
        f"val mIoU {design.val_miou:.3f} ({design.val_miou_source})"
        if design.val_miou is not None
        else f"val mIoU {design.val_miou_source}"
    )
    bf = (
        f"val BF {design.val_bf:.3f} ({design.val_bf_source})"
        if design.val_bf is not None
        else f"val BF {design.val_bf_source}"
    )
    lines = [
        f"{design.name} | backbone {design.backbone} | {stride}",
        f"params {_si(design.params, '')} | {miou} | {bf}",
    ]
    if view is None:
        return lines
    h, w = view.grid.image_size
    lat = view.latency
    timing = "latency not measured"
    if lat.get("latency_ms") is not None:
        timing = (
            f"latency {lat['latency_ms']:.1f} ms (median of {lat['latency_runs']}, batch 1, "
            f"{torch.get_num_threads()} threads, {design.numerics})"
        )
        if lat.get("latency_warning"):
            timing += f" [{lat['latency_warning']}]"
    gh, gw = view.grid.grid
    grid_stride = view.grid.stride[0]
    lines += [
        f"MACs {_si(view.macs, '')} at {w} x {h} | {timing}",
        f"logit grid {gh} x {gw}, stride {grid_stride:g} px",
    ]
    if grid_stride < design.output_stride:
        lines.append(
            f"(the backbone's features end at stride {design.output_stride}; the head predicts "
            f"at stride {grid_stride:g} by merging earlier, finer features)"
        )
    if pixel is not None and view.pixel_rf is not None and view.erf is not None:
        k, p = view.pixel_class(pixel)
        name = design.classes.names[k] if k < len(design.classes.names) else str(k)
        lines += [
            f"pixel (row {pixel[0]}, col {pixel[1]}): {name} (p = {p:.2f})",
            f"{view.pixel_rf.label()} | ERF r50 {view.erf.r50:.0f} px, r90 {view.erf.r90:.0f} px",
        ]
    return lines


def facts_markdown(design: Design, view: DesignView | None, pixel: tuple[int, int] | None) -> str:
    lines = facts_lines(design, view, pixel)
    return "  \n".join([f"**{lines[0]}**", *lines[1:]])  # markdown line breaks


def wrap(lines: list[str], width: int, font: ImageFont.ImageFont) -> list[str]:
    """``lines`` broken at spaces so that each drawn with ``font`` fits in ``width`` px (a word
    longer than that stays whole on its own line)."""
    out: list[str] = []
    for text in lines:
        current = ""
        for word in text.split(" "):
            trial = f"{current} {word}" if current else word
            if current and font.getlength(trial) > width:
                out.append(current)
                current = "  " + word  # a continuation is indented
            else:
                current = trial
        out.append(current)
    return out


def _panel(picture: np.ndarray | None, size: tuple[int, int]) -> Image.Image:
    if picture is None:
        return Image.new("RGB", size, (235, 235, 235))
    return Image.fromarray(picture).resize(size, Image.Resampling.NEAREST)


def comparison_picture(
    session: Session, panels: list[tuple[np.ndarray | None, np.ndarray | None, str]]
) -> Image.Image:
    """One PNG of the page: the image and its ground truth, then a row per design (prediction
    with grid and RF box, ERF, facts wrapped to the text column), then the class legend."""
    picture = session.picture
    assert picture is not None  # the caller checks
    h, w = picture.image.shape[:2]
    scale = max(1.0, 256 / max(h, w))  # small images are shown larger, pixel for pixel
    size = (round(w * scale), round(h * scale))
    font = ImageFont.load_default()
    text_w, pad, line = 560, 8, 14
    rows = [
        (
            picture.image,
            picture.mask,
            [
                f"image {picture.name}",
                "ground truth" if picture.mask is not None else "no ground truth",
            ],
        )
    ]
    for (pred, erf, _), design, view in zip(
        panels, session.designs, session.views + [None] * len(panels), strict=False
    ):
        rows.append((pred, erf, wrap(_facts(design, view, session.pixel), text_w - pad, font)))
    line_rows = max(size[1], *(len(lines) * line for _, _, lines in rows))
    classes = session.designs[0].classes
    legend = legend_image(range(len(classes.names)), classes)
    height = pad + len(rows) * (line_rows + pad) + legend.height + pad
    width = max(pad * 4 + 2 * size[0] + text_w, legend.width + 2 * pad)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (left, right, lines) in enumerate(rows):
        y = pad + i * (line_rows + pad)
        if i == 0 and right is not None:
            from segkit.evaluation.overlay import overlay

            right = overlay(picture.image, right, session.designs[0].classes, void=True)
        sheet.paste(_panel(left, size), (pad, y))
        sheet.paste(_panel(right, size), (pad * 2 + size[0], y))
        for j, text in enumerate(lines):
            draw.text((pad * 3 + 2 * size[0], y + j * line), text, fill="black", font=font)
    sheet.paste(legend, (pad, pad + len(rows) * (line_rows + pad)))
    return sheet


def _facts(design: Design, view: DesignView | None, pixel: tuple[int, int] | None) -> list[str]:
    return facts_lines(design, view, pixel)
