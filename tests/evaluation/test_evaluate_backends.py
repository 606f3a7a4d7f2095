"""evaluate and predict with eval.backend / predict.backend = torch | onnxruntime: same metrics and
label maps from the same checkpoint and data, in whole, slide and multi-scale + flip modes."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from helpers.evaluation import TINY_TRAIN, compose_config, write_checkpoint
from segkit.data import SyntheticSpec, generate_synthetic, read_image, read_mask
from segkit.tasks.evaluate import evaluate
from segkit.tasks.predict import predict

FAST = ["eval.device=cpu", "eval.trimap_widths=[1]", "eval.num_overlays=0"]
MODES = {
    "whole": [],
    "slide": ["eval.mode=slide", "eval.window=48", "eval.stride=32", "eval.batch_size=2"],
    "ms_flip": ["eval.scales=[0.75,1.25]", "eval.flip=true"],
    "os8_batched": ["eval.output_stride=8", "eval.batch_size=3"],
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, data_root):
    """The tiny DeepLabv3+ of the evaluation fixture with BatchNorm statistics measured on synthetic
    scenes (random ones leave its predictions nearly constant): it predicts every class, so equal
    metrics mean equal label maps, not two all-background answers."""
    run = tmp_path_factory.mktemp("varied_run")
    cfg = compose_config(
        "train",
        [f"paths.root_dir={run}", f"paths.output_dir={run}", f"data.root={data_root}", *TINY_TRAIN],
    )
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    spec = SyntheticSpec(seed=1, num_train=4, num_val=1, min_size=64, max_size=96, num_classes=7)
    voc = generate_synthetic(run / "calibration", spec)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # running statistics = the average over the calibration images
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for path in sorted((voc / "JPEGImages").glob("*.jpg")):
            model(torch.from_numpy(read_image(path)).permute(2, 0, 1)[None].contiguous())
    return write_checkpoint(run / "varied.ckpt", cfg, model.eval())


@pytest.fixture(scope="module")
def onnx_args(tmp_path_factory):
    """One cache for the module: each output stride is exported once, then served from it."""
    return [f"eval.onnx_cache={tmp_path_factory.mktemp('cache')}", "eval.onnx_exporter=legacy"]


@pytest.mark.parametrize("mode", list(MODES))
def test_miou_equal_between_backends(checkpoint, compose_eval, onnx_args, mode):
    args = [f"ckpt_path={checkpoint}", *FAST, *MODES[mode]]
    # the exact float32 path: onnxruntime runs the float32 graph (eval.precision=auto is bf16 here)
    eager = evaluate(compose_eval(*args, "eval.precision=32", "eval.channels_last=false"))
    onnx = evaluate(compose_eval(*args, "eval.backend=onnxruntime", *onnx_args))
    assert (eager["settings"]["precision"], onnx["settings"]["precision"]) == ("32", "32")
    assert round(onnx["mIoU"], 4) == round(eager["mIoU"], 4)
    assert round(onnx["trimap"]["mIoU"][0], 4) == round(eager["trimap"]["mIoU"][0], 4)
    cm_e, cm_o = np.asarray(eager["confusion_matrix"]), np.asarray(onnx["confusion_matrix"])
    assert cm_e.sum() == cm_o.sum() and np.abs(cm_e - cm_o).sum() <= 2e-4 * cm_e.sum()
    assert (eager["settings"]["backend"], onnx["settings"]["backend"]) == ("torch", "onnxruntime")
    assert eager["settings"]["onnx_model"] is None
    assert onnx["settings"]["onnx_model"].endswith(".onnx")
    assert onnx["settings"]["output_stride"] == eager["settings"]["output_stride"]
    predicted = (cm_e.sum(0) > 0).sum()
    assert predicted >= 5, cm_e.sum(0)  # the model predicts most classes: a real comparison


def test_threads_setting_is_recorded_and_applied(checkpoint, compose_eval, onnx_args):
    before = torch.get_num_threads()
    try:
        metrics = evaluate(
            compose_eval(f"ckpt_path={checkpoint}", *FAST, "eval.threads=1", "eval.limit=2",
                         "eval.backend=onnxruntime", *onnx_args)
        )  # fmt: skip
        assert metrics["settings"]["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_evaluate_without_onnxruntime_is_one_line(checkpoint, compose_eval, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(
        ValueError,
        match=r"^backend='onnxruntime' needs onnxruntime, which is not installed: pip install 'segkit\[onnx\]'",
    ):
        evaluate(compose_eval(f"ckpt_path={checkpoint}", *FAST, "eval.backend=onnxruntime"))


def test_predict_label_maps_equal_between_backends(checkpoint, compose_eval, tmp_path):
    # Synthetic scenes (not noise): the tiny model predicts several classes on them.
    spec = SyntheticSpec(num_train=1, num_val=3, min_size=64, max_size=96, num_classes=7)
    folder = generate_synthetic(tmp_path / "synthetic", spec) / "JPEGImages"
    outputs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        summary = predict(
            compose_eval(
                f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}", "predict.device=cpu",
                f"predict.backend={backend}", f"predict.onnx_cache={tmp_path / 'cache'}",
                "predict.onnx_exporter=legacy", "predict.flip=true", "predict.precision=32",
                "predict.channels_last=false", name="predict",  # exact float32, as onnxruntime
            )
        )  # fmt: skip
        assert summary["written"] == 4 and summary["backend"] == backend
        outputs[backend] = np.concatenate(
            [
                read_mask(p).ravel()
                for p in sorted(p for p in out.glob("*.png") if p.name != "legend.png")
            ]
        )
    assert (outputs["torch"] == outputs["onnxruntime"]).mean() >= 0.9999
    assert len(np.unique(outputs["torch"])) >= 5
