"""The design explorer's model side, without any UI (``segkit.explore.ui`` puts Gradio on it).

Checkpoints -> ``Design`` objects (model, facts, classes); an image -> per design its prediction,
logit grid, MACs and latency at this size; a clicked pixel -> per design the predicted class and
probability, the receptive-field box (``analysis.pixel_rf``) and the ERF (``analysis.erf``).
Everything a user can get wrong (unreadable checkpoint, different class sets, an upload that is
not an image, a huge image, an impossible output stride) is a ``ValueError`` /
``FileNotFoundError`` with one line, or a notice string: the page shows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from segkit.analysis import count_params, latency_samples, latency_summary, trace, watch_points
from segkit.analysis.erf import ERF, PixelGradients
from segkit.analysis.pixel_rf import OutputGrid, PixelRF, output_grid, pixel_receptive_field
from segkit.data import read_image
from segkit.data.classes import ClassInfo
from segkit.evaluation.inference import check_precision, to_channels_last
from segkit.runs import builder_name, design_name
from segkit.tasks.checkpoints import eager_numerics, load_trained


def same_classes(a: ClassInfo, b: ClassInfo) -> bool:
    """Whether two checkpoints label alike: the same names and colours (where the metadata came
    from, ``source``, may differ)."""
    return a.names == b.names and a.colour_table() == b.colour_table()


def find_checkpoints(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Checkpoint files from ``paths``: a file is itself; a folder (a run or multirun folder)
    gives each run's ``checkpoints/best.ckpt`` (its ``last.ckpt`` when it has no best, noted).
    Returns the files and notices; a path that is neither is a notice, not an error."""
    found: list[Path] = []
    notices: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            runs = sorted({p.parent.parent for p in path.rglob("checkpoints/*.ckpt")})
            for run in runs:
                best, last = run / "checkpoints" / "best.ckpt", run / "checkpoints" / "last.ckpt"
                if best.is_file():
                    found.append(best)
                elif last.is_file():
                    found.append(last)
                    notices.append(f"{run}: no best.ckpt, showing last.ckpt")
            if not runs:
                notices.append(f"{path}: no <run>/checkpoints/*.ckpt under this folder")
        else:
            notices.append(f"{path}: no such checkpoint file or folder")
    return found, notices


def run_val_miou(path: Path) -> tuple[float | None, str]:
    """The run's val mIoU for checkpoint ``path`` from ``<run>/metrics.json`` (the train task's):
    the best one for ``best.ckpt``, the last validation's otherwise; (None, why) when absent."""
    return _run_value(path, "val/mIoU_best" if path.name == "best.ckpt" else "val/mIoU")


def run_val_bf(path: Path) -> tuple[float | None, str]:
    """The run's val boundary F1 for checkpoint ``path`` (as :func:`run_val_miou`): the one of the
    best-mIoU validation for ``best.ckpt``; runs trained before BF was logged have none."""
    return _run_value(path, "val/BF_at_best" if path.name == "best.ckpt" else "val/BF")


def _run_value(path: Path, key: str) -> tuple[float | None, str]:
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    try:
        metrics = json.loads((run / "metrics.json").read_text())
    except (OSError, ValueError):
        return None, "not recorded (no readable metrics.json in the run folder)"
    value = metrics.get(key) if isinstance(metrics, dict) else None
    return (None, f"not recorded ({key} missing)") if value is None else (float(value), key)


@dataclass
class Design:
    """One checkpoint's network and its facts; ``output_stride`` is the current one."""

    path: Path
    name: str
    backbone: str
    model: nn.Module
    cfg: dict[str, Any]
    classes: ClassInfo  # the checkpoint's (segkit.tasks.checkpoints.load_trained)
    trained_stride: int
    params: int
    val_miou: float | None
    val_miou_source: str
    val_bf: float | None = None  # SegNet's boundary F1 of the run's validation
    val_bf_source: str = "not recorded"
    precision: str = "32"  # bf16 (autocast) | 32: the numerics its forwards run in
    channels_last: bool = False

    @property
    def numerics(self) -> str:
        """The numerics in words (``bf16 + channels_last``, ``fp32``)."""
        words = "bf16" if self.precision == "bf16" else "fp32"
        return words + (" + channels_last" if self.channels_last else "")

    @property
    def output_stride(self) -> int:
        return int(getattr(self.model, "output_stride", self.trained_stride))


def load_design(
    path: str | Path,
    device: torch.device,
    *,
    precision: str = "auto",
    channels_last: bool | None = None,
) -> Design:
    """A checkpoint as a ``Design`` on ``device`` (eval mode); ValueError / FileNotFoundError
    with one line for a file that is not a readable segkit checkpoint. ``precision`` /
    ``channels_last``: the numerics of its forwards (``auto`` / None: as the run trained, bf16
    where ``device`` computes it natively; :func:`segkit.tasks.checkpoints.eager_numerics`)."""
    path = Path(path)
    trained = load_trained(path)
    model, cfg, classes = trained.model, trained.cfg, trained.classes
    numerics, nhwc = eager_numerics(precision, channels_last, cfg, device)
    model = model.to(device).eval()
    if nhwc:
        to_channels_last(model)
    miou, source = run_val_miou(path)
    bf, bf_source = run_val_bf(path)
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name
    name = f"{design_name(builder_name(cfg.get('model')), cfg.get('model'))} ({run})"
    return Design(
        path=path,
        name=name,
        backbone=builder_name(cfg.get("backbone")) or "?",
        model=model,
        cfg=cfg,
        classes=classes,
        trained_stride=int(getattr(model, "output_stride", 0) or 0),
        params=count_params(model),
        val_miou=miou,
        val_miou_source=source,
        val_bf=bf,
        val_bf_source=bf_source,
        precision=numerics,
        channels_last=nhwc,
    )


def load_designs(
    paths: list[Path],
    device: torch.device,
    *,
    precision: str = "auto",
    channels_last: bool | None = None,
) -> tuple[list[Design], list[str]]:
    """Every readable checkpoint of ``paths`` with the first one's class set; the others are
    notices (unreadable: why; other classes: named, not mixed into the comparison).
    ``precision`` / ``channels_last``: as :func:`load_design` takes them, for every design."""
    check_precision(precision)  # one refusal for all, not a notice per checkpoint
    designs: list[Design] = []
    notices: list[str] = []
    for path in paths:
        try:
            design = load_design(path, device, precision=precision, channels_last=channels_last)
        except (ValueError, FileNotFoundError) as err:
            notices.append(f"{path}: {err}")
            continue
        if designs and not same_classes(design.classes, designs[0].classes):
            first = designs[0]
            notices.append(
                f"{path}: its {len(design.classes.names)} classes ({', '.join(design.classes.names[:4])}"
                f", ...) differ from those of {first.path} ({len(first.classes.names)}: "
                f"{', '.join(first.classes.names[:4])}, ...): not mixed into this comparison; "
                "explore it with checkpoints of its own class set"
            )
            continue
        designs.append(design)
    return designs, notices


@dataclass
class Picture:
    """The image under study: RGB uint8 (H, W, 3), its ground truth (H, W) when known."""

    image: np.ndarray
    mask: np.ndarray | None
    name: str
    notice: str | None = None


def fit_image(picture: Picture, max_side: int) -> Picture:
    """``picture`` downscaled (aspect kept; masks by nearest neighbour) so that its longer side
    is at most ``max_side``, with a notice saying so; unchanged when it fits."""
    h, w = picture.image.shape[:2]
    if max(h, w) <= max_side:
        return picture
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = np.asarray(Image.fromarray(picture.image).resize(size, Image.Resampling.BILINEAR))
    mask = None
    if picture.mask is not None:
        mask = np.asarray(Image.fromarray(picture.mask).resize(size, Image.Resampling.NEAREST))
    notice = (
        f"{picture.name}: {w} x {h} px downscaled to {size[0]} x {size[1]} "
        f"(longer side > explore.max_side={max_side})"
    )
    return Picture(image, mask, picture.name, notice)


def read_upload(path: str | Path, max_side: int) -> Picture:
    """An uploaded file as a ``Picture`` (no ground truth); ValueError naming the file when it is
    not a readable image."""
    path = Path(path)
    try:
        image = read_image(path)
    except (ValueError, OSError) as err:
        raise ValueError(
            f"{path.name} is not a readable image ({err}): upload a JPEG or PNG"
        ) from None
    return fit_image(Picture(image, None, path.name), max_side)


@dataclass
class DesignView:
    """One design on the current image (and pixel)."""

    design: Design
    grid: OutputGrid
    macs: int
    latency: dict[str, Any]
    probs: torch.Tensor  # (K, H, W) softmax, on the CPU
    probe: PixelGradients
    pixel_rf: PixelRF | None = None
    erf: ERF | None = None

    @property
    def prediction(self) -> np.ndarray:
        return self.probs.argmax(0).numpy().astype(np.uint8)

    def pixel_class(self, pixel: tuple[int, int]) -> tuple[int, float]:
        """(class, probability) predicted at ``pixel`` (row, col)."""
        p = self.probs[:, pixel[0], pixel[1]]
        k = int(p.argmax())
        return k, float(p[k])


def view_design(design: Design, picture: Picture, *, latency_runs: int = 3) -> DesignView:
    """Run ``design`` on ``picture``: prediction (one forward whose graph is kept for the ERFs of
    later clicks), MACs and logit grid at this size (meta trace), batch-1 latency (timed plain
    forwards, after that forward as warm-up)."""
    model = design.model
    device = next(model.parameters()).device
    x = torch.tensor(picture.image).permute(2, 0, 1)[None].to(device)  # uint8: the model normalises
    if design.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    size = picture.image.shape[:2]
    result = trace(model, x, watch=watch_points(model), meta=True)
    timed = _Synchronised(model) if device.type == "cuda" else model
    # the design's numerics: the kept graph (so each click's ERF backward) and the timed forwards
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=design.precision == "bf16"):
        probe = PixelGradients(model, x)
        times = (
            latency_samples(timed, x, runs=latency_runs, warmup=0, budget_s=1.0)
            if latency_runs
            else []
        )
    probs = torch.softmax(probe.logits.float(), dim=0).cpu()
    return DesignView(
        design, output_grid(result, size), result.macs, latency_summary(times), probs, probe
    )


class _Synchronised(nn.Module):
    """``model`` whose forward waits for the GPU, so wall-clock timing measures its kernels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, x: torch.Tensor) -> Any:
        out = self.inner(x)
        torch.cuda.synchronize(x.device)
        return out


def click(view: DesignView, pixel: tuple[int, int]) -> DesignView:
    """The RF box and ERF (of the logit of the class predicted there) of ``pixel`` (row, col)."""
    view.pixel_rf = pixel_receptive_field(view.grid, pixel)
    view.erf = view.probe.erf(pixel)
    return view


def switch_output_stride(design: Design, output_stride: int) -> None:
    """Re-dilate ``design``'s network to ``output_stride`` (same weights); ValueError naming the
    design when its head cannot predict at that stride (e.g. FCN-32s at 16)."""
    try:
        design.model.set_output_stride(int(output_stride))
    except ValueError as err:
        raise ValueError(f"{design.name}: {err}") from None


@dataclass
class Session:
    """What the page shows: the designs, the image, the clicked pixel, the notices."""

    designs: list[Design]
    notices: list[str] = field(default_factory=list)
    picture: Picture | None = None
    views: list[DesignView] = field(default_factory=list)
    pixel: tuple[int, int] | None = None


__all__ = [
    "Design",
    "DesignView",
    "Picture",
    "Session",
    "ValSplit",
    "same_classes",
    "click",
    "find_checkpoints",
    "fit_image",
    "load_design",
    "load_designs",
    "read_upload",
    "run_val_bf",
    "run_val_miou",
    "switch_output_stride",
    "view_design",
]


class ValSplit:
    """The validation split of a checkpoint's stored data config (generated first when it is
    the synthetic set and missing), images with their ground truth, by id; any dataset (its
    reader builds the split, as for training validation)."""

    def __init__(self, cfg: dict[str, Any], *, limit: int | None = None) -> None:
        from hydra.utils import instantiate

        from segkit.tasks.checkpoints import stored_data

        dataset = instantiate(stored_data(cfg, path="the checkpoint")["dataset"], _convert_="all")
        dataset.prepare()
        self.dataset = dataset.split(dataset.val_split, on_repeat="keep_first")
        ids = self.dataset.ids
        self.ids: list[str] = list(ids[: int(limit)] if limit else ids)

    def picture(self, image_id: str) -> Picture:
        if image_id not in self.ids:
            raise ValueError(f"{image_id!r} is not an image of the validation split")
        image, mask = self.dataset.load(self.dataset.ids.index(image_id))
        return Picture(image, mask, image_id)
