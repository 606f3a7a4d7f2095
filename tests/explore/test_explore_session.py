"""The explorer without its UI: checkpoints -> designs, images, clicks, output-stride switches,
export, and every bad input as a message (``Explorer`` actions never raise a user error)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.explore import ui as explore_ui
from segkit.explore.session import (
    Picture,
    Session,
    ValSplit,
    find_checkpoints,
    fit_image,
    load_designs,
)
from segkit.explore.ui import INSTALL_HINT, Explorer, require_gradio
from segkit.tasks import explore as explore_task

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def app(trained, tmp_path_factory) -> Explorer:
    paths, _ = find_checkpoints([trained["fcn"], trained["deeplabv3plus"]])
    designs, notices = load_designs(paths, CPU)
    assert notices == []
    out = tmp_path_factory.mktemp("explore_out")
    return Explorer(Session(designs), val=ValSplit(designs[0].cfg), max_side=128, out_dir=out)


def panels(outputs: list) -> list[tuple]:
    """(prediction, ERF, facts) per design from an action's outputs."""
    rest = outputs[3:]
    return [tuple(rest[i : i + 3]) for i in range(0, len(rest), 3)]


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_a_validation_image_then_two_clicks(app: Explorer):
    first_id = app.val.ids[0]
    out = app.pick_validation(first_id)
    image, gt, status = out[:3]
    assert image.shape[2] == 3 and gt.shape == image.shape and first_id in status
    for pred, erf, facts in panels(out):
        assert pred.shape == image.shape and erf is None
        assert "MACs" in facts and "latency" in facts and "val mIoU 0." in facts
        assert "val BF 0." in facts or "val BF 1.000" in facts
    h, w = app.session.picture.image.shape[:2]  # image pixels; the page shows them enlarged
    factor = app.scale()
    assert factor == 512 // max(h, w) > 1 and image.shape[:2] == (h * factor, w * factor)
    a = app.click(h // 3, w // 3)
    b = app.click(h - 5, w - 5)
    for (pred_a, erf_a, facts_a), (_, erf_b, _) in zip(panels(a), panels(b), strict=True):
        assert erf_a.shape == image.shape and not np.array_equal(erf_a, erf_b)
        assert f"pixel (row {h // 3}, col {w // 3})" in facts_a and "ERF r50" in facts_a
        assert (pred_a == (255, 255, 0)).all(-1).any()  # the RF box is drawn
    fcn_facts, dlv3p_facts = panels(a)[0][2], panels(a)[1][2]
    assert "RF global" in dlv3p_facts  # ASPP's image pooling
    assert "RF global" not in fcn_facts and "RF " in fcn_facts


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_a_click_on_the_enlarged_picture_lands_on_its_image_pixel(app: Explorer):
    app.pick_validation(app.val.ids[0])
    factor = app.scale()
    image = app.session.picture.image
    for row, col in [(0, 0), (5, 7), (image.shape[0] - 1, image.shape[1] - 1)]:
        # any shown pixel of the f x f block of (row, col) is that image pixel
        out = app.click_shown(row * factor + factor - 1, col * factor)
        assert f"pixel (row {row}, col {col})" in out[2]
        shown = out[0]
        assert (shown[row * factor : (row + 1) * factor, col * factor] == image[row, col]).all()


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_the_page_has_a_class_legend_and_fcn8s_says_why_its_grid_is_finer(app: Explorer):
    legend = app.legend()
    names = app.session.designs[0].classes.names
    assert legend.ndim == 3 and legend.shape[0] > 18 * len(names)  # one swatch row per class
    from segkit.evaluation.overlay import colour_lut

    for colour in colour_lut(app.session.designs[0].classes)[: len(names)]:
        assert (legend == np.asarray(colour, dtype=legend.dtype)).all(-1).any()
    out = app.pick_validation(app.val.ids[0])
    fcn_facts = panels(out)[0][2]
    assert "output stride 32" in fcn_facts and "stride 8 px" in fcn_facts
    assert "the head predicts at stride 8 by merging earlier, finer features" in fcn_facts


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_output_stride_switch_changes_the_grid(app: Explorer):
    app.pick_validation(app.val.ids[1])
    app.click(10, 10)
    index = 1  # DeepLabv3+, trained at OS 16
    out = app.set_output_stride(index, 8)
    assert "now at output stride 8" in out[2]
    assert "stride 4 px" in panels(out)[index][2]  # the decoder's grid stays at 4
    assert "output stride 8 (trained at 16)" in panels(out)[index][2]
    out = app.set_output_stride(0, 8)  # FCN-8s at OS 8: possible
    assert "error" not in out[2]
    app.set_output_stride(0, 32)
    app.set_output_stride(index, 16)


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_export_writes_the_comparison_png(app: Explorer):
    assert app.pick_validation(app.val.ids[0])
    app.click(20, 20)
    path = Path(app.export())
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 2 * 256
        sheet = np.asarray(png.convert("RGB"))
    from segkit.evaluation.overlay import colour_lut

    classes = app.session.designs[0].classes
    bottom = sheet[-(18 + 6) * len(classes.names) - 12 :]  # the legend is the last block
    for colour in colour_lut(classes)[: len(classes.names)]:
        assert (bottom == np.asarray(colour, dtype=sheet.dtype)).all(-1).any()


def test_export_text_is_wrapped_to_its_column():
    from PIL import ImageFont

    from segkit.explore.view import wrap

    font = ImageFont.load_default()
    long = "MACs 1.23 G at 480 x 360 | " + "latency 123.4 ms (median of 5, batch 1, 2 threads) " * 3
    lines = wrap([long, "short"], 300, font)
    assert len(lines) > 2 and lines[-1] == "short"
    assert all(font.getlength(line) <= 300 for line in lines)
    assert " ".join(w for line in lines for w in line.split()) == " ".join(
        (long + " short").split()
    )


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_bad_uploads_and_clicks_are_messages(app: Explorer, tmp_path: Path):
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"GIF89a not really")
    out = app.upload(str(fake))
    assert out[2].startswith("**error:** photo.png is not a readable image")
    huge = tmp_path / "huge.png"
    Image.fromarray(np.full((300, 500, 3), 90, dtype=np.uint8)).save(huge)
    out = app.upload(str(huge))
    assert app.session.picture.image.shape == (77, 128, 3) and "downscaled to 128 x 77" in out[2]
    assert out[0].shape == (77 * 4, 128 * 4, 3)  # shown enlarged 4 x: 512 px
    assert out[1] is None  # an upload has no ground truth
    empty = Explorer(Session(app.session.designs), val=None, max_side=128, out_dir=tmp_path)
    assert "pick or upload an image first" in empty.click(3, 3)[2]
    assert "no validation images" in empty.pick_validation("x")[2]
    assert empty.export() is None and "nothing to export" in empty.status


def test_fit_image_keeps_small_images_and_scales_masks_by_nearest():
    small = Picture(np.zeros((10, 20, 3), np.uint8), None, "s")
    assert fit_image(small, 20) is small
    mask = np.zeros((40, 80), np.uint8)
    mask[:, 40:] = 3
    fitted = fit_image(Picture(np.zeros((40, 80, 3), np.uint8), mask, "m"), 20)
    assert fitted.image.shape == (10, 20, 3) and set(np.unique(fitted.mask)) == {0, 3}


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_unreadable_and_foreign_checkpoints_are_named_not_mixed(
    trained, other_classes, garbage, tmp_path
):
    paths, notices = find_checkpoints(
        [trained["fcn"], garbage, other_classes, tmp_path / "gone.ckpt", tmp_path]
    )
    assert len(paths) == 3 and any("gone.ckpt: no such" in n for n in notices)
    assert any("no <run>/checkpoints" in n for n in notices)
    designs, more = load_designs(paths, CPU)
    assert [d.path for d in designs] == [trained["fcn"]]
    assert any(str(garbage) in n and "unreadable or corrupt" in n for n in more)
    assert any(str(other_classes) in n and "4 classes" in n and "not mixed" in n for n in more)


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_a_multirun_folder_gives_each_runs_best_checkpoint(trained):
    runs = trained["fcn"].parent.parent.parent  # <root>/runs/{fcn,deeplabv3plus}
    paths, notices = find_checkpoints([runs])
    assert sorted(paths) == sorted([trained["fcn"], trained["deeplabv3plus"]]) and not notices


def test_no_loadable_checkpoint_is_one_line(garbage, tmp_path):
    from segkit.cli.configs import compose_config

    cfg = compose_config(
        "explore",
        [f"ckpt_path={garbage}", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"],
    )
    with pytest.raises(
        ValueError, match=r"^no checkpoint could be loaded \(ckpt_path\): .*garbage"
    ):
        explore_task.explore(cfg)


def test_missing_app_extra_is_one_line(monkeypatch):
    monkeypatch.setattr(explore_ui.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError) as err:
        require_gradio()
    assert str(err.value) == INSTALL_HINT and "pip install -e '.[app]'" in INSTALL_HINT


@pytest.mark.slow  # starts the Gradio server in this process
def test_host_and_port_follow_gradio_variables_and_share_stays_off(trained, tmp_path, monkeypatch):
    import socket

    from helpers.explore import need

    need("gradio", "pip install -e '.[app]'")

    from segkit.cli.configs import compose_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GRADIO_SERVER_PORT", str(port))
    monkeypatch.setenv("GRADIO_SHARE", "true")  # Gradio's own switch: not read by the explorer
    cfg = compose_config(
        "explore",
        [
            f"ckpt_path=[{trained['fcn']}]",
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'run'}",
            "explore.block=false",
            "explore.num_val_images=1",
        ],
    )
    result = explore_task.explore(cfg)
    try:
        assert result["url"].rstrip("/") == f"http://127.0.0.1:{port}"
        assert result["demo"].share is False and result["designs"] == ["FCN-8s (fcn)"]
    finally:
        result["demo"].close()


@pytest.mark.slow  # a fresh interpreter imports torch
def test_script_without_a_loadable_checkpoint_exits_1_in_one_line(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "explore.py"), f"ckpt_path={tmp_path / 'gone.ckpt'}",
         f"paths.root_dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(root / "src")},
    )  # fmt: skip
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: no checkpoint could be loaded (ckpt_path): {tmp_path / 'gone.ckpt'}: "
                      "no such checkpoint file or folder"]  # fmt: skip
    assert "Traceback" not in proc.stderr


def test_an_impossible_output_stride_is_a_message_and_changes_nothing(tmp_path):
    import functools

    from segkit.backbones import MobileNetV2
    from segkit.data.classes import ClassInfo
    from segkit.explore.session import Design
    from segkit.models import fcn

    model = fcn(backbone=functools.partial(MobileNetV2, width_mult=0.35), num_classes=2,
                fcn_variant="32s").eval()  # fmt: skip
    design = Design(
        path=tmp_path / "x.ckpt", name="FCN-32s (x)", backbone="mobilenetv2", model=model, cfg={},
        classes=ClassInfo(("a", "b")), trained_stride=32, params=0,
        val_miou=None, val_miou_source="not recorded",
    )  # fmt: skip
    app = Explorer(Session([design]), val=None, max_side=64, out_dir=tmp_path)
    status = app.set_output_stride(0, 16)[2]
    assert status.startswith("**error:** FCN-32s (x): fcn_variant=32s predicts at stride 32")
    assert design.output_stride == 32


def test_facts_name_the_runs_val_bf(tmp_path):
    import functools
    import json

    from segkit.backbones import MobileNetV2
    from segkit.data.classes import ClassInfo
    from segkit.explore.session import Design, run_val_bf
    from segkit.explore.view import facts_lines
    from segkit.models import fcn

    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    (tmp_path / "run" / "metrics.json").write_text(
        json.dumps({"val/mIoU_best": 0.5, "val/BF_at_best": 0.4123, "val/BF": 0.3})
    )
    assert run_val_bf(ckpt) == (0.4123, "val/BF_at_best")
    assert run_val_bf(ckpt.with_name("last.ckpt")) == (0.3, "val/BF")
    model = fcn(backbone=functools.partial(MobileNetV2, width_mult=0.35), num_classes=2,
                fcn_variant="32s").eval()  # fmt: skip
    design = Design(
        path=ckpt, name="FCN-32s (run)", backbone="mobilenetv2", model=model, cfg={},
        classes=ClassInfo(("a", "b")), trained_stride=32, params=0, val_miou=0.5,
        val_miou_source="val/mIoU_best", val_bf=0.4123, val_bf_source="val/BF_at_best",
    )  # fmt: skip
    assert "val BF 0.412 (val/BF_at_best)" in facts_lines(design, None, None)[1]


def test_the_numerics_follow_the_trained_run_unless_asked() -> None:
    from segkit.evaluation.inference import bf16_native
    from segkit.tasks.checkpoints import eager_numerics

    fp32_run = {"trainer": {"precision": "32-true"}, "module": {"channels_last": False}}
    bf16_run = {"trainer": {"precision": "bf16-mixed"}, "module": {"channels_last": True}}
    native = "bf16" if bf16_native(CPU) else "32"
    assert eager_numerics("auto", None, fp32_run, CPU) == ("32", False)
    assert eager_numerics("auto", None, bf16_run, CPU) == (native, True)
    assert eager_numerics("32", False, bf16_run, CPU) == ("32", False)
    assert eager_numerics("bf16", True, fp32_run, CPU) == ("bf16", True)  # asked: as asked
    with pytest.raises(ValueError, match=r"^precision must be one of auto, bf16, 32, got 'fp16'"):
        eager_numerics("fp16", None, fp32_run, CPU)


@pytest.mark.slow  # trains two tiny checkpoints once (session fixture)
def test_bf16_designs_predict_as_fp32_ones_and_give_erfs(trained):
    """explore.precision=bf16 + channels_last: the same prediction on (nearly) every pixel as
    float32, a finite ERF per click, and the facts say which numerics ran."""
    from segkit.explore.session import click, view_design
    from segkit.explore.view import facts_lines

    paths, _ = find_checkpoints([trained["deeplabv3plus"]])
    (exact,), _ = load_designs(paths, CPU, precision="32", channels_last=False)
    (fast,), _ = load_designs(paths, CPU, precision="bf16", channels_last=True)
    assert (exact.precision, exact.channels_last, fast.precision, fast.channels_last) == (
        "32", False, "bf16", True,
    )  # fmt: skip
    weight = next(p for p in fast.model.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    image = ValSplit(exact.cfg).picture(ValSplit(exact.cfg).ids[0])
    views = [view_design(d, image, latency_runs=1) for d in (exact, fast)]
    agree = float((views[0].prediction == views[1].prediction).mean())
    assert agree >= 0.98, agree
    h, w = image.image.shape[:2]
    for design, view in zip((exact, fast), views, strict=True):
        erf = click(view, (h // 2, w // 2)).erf
        assert erf is not None and np.isfinite(erf.r50) and erf.r50 > 0
        assert design.numerics in " ".join(facts_lines(design, view, None))
    assert fast.numerics == "bf16 + channels_last" and exact.numerics == "fp32"


def test_a_bad_precision_is_one_refusal_not_a_notice_per_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^precision must be one of"):
        load_designs([tmp_path / "a.ckpt", tmp_path / "b.ckpt"], CPU, precision="half")
