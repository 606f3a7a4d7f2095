"""The evaluate task end to end on a tiny checkpoint: files, schema, overrides and user errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.evaluation import TINY_TRAIN, compose_config
from segkit.data.voc import VOC_CLASSES
from segkit.evaluation.metrics import scores_from_confusion
from segkit.tasks.checkpoints import load_segmentor
from segkit.tasks.evaluate import evaluate
from segkit.tasks.train import train

SCHEMA_KEYS = {"schema", "settings", "num_images", "mIoU", "pixel_acc", "mean_class_acc", "fw_IoU",
               "BF", "class_names", "per_class_iou", "per_class_acc", "per_class_bf",
               "confusion_matrix", "trimap",
               "best_images", "worst_images"}  # fmt: skip
FAST = ["eval.device=cpu", "eval.trimap_widths=[1,4]"]


def test_evaluate_writes_metrics_plots_and_overlays(checkpoint, compose_eval, tmp_path, capsys):
    metrics = evaluate(compose_eval(f"ckpt_path={checkpoint}", *FAST, "eval.num_overlays=2"))
    run = tmp_path / "run"
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert set(metrics) == SCHEMA_KEYS and metrics["num_images"] == 6
    for name in ("confusion_matrix.png", "trimap.png", "overlays.png", "config.yaml"):
        assert (run / name).stat().st_size > 500, name
    cm = torch.tensor(metrics["confusion_matrix"])
    assert cm.shape == (7, 7) and int(cm.sum()) > 6 * 64 * 64 * 0.5  # void and padding left out
    ious = [v for v in metrics["per_class_iou"].values() if v is not None]
    assert metrics["mIoU"] == pytest.approx(sum(ious) / len(ious))
    assert metrics["trimap"]["widths"] == [1, 4] and len(metrics["trimap"]["mIoU"]) == 2
    settings = metrics["settings"]
    assert (settings["model"], settings["output_stride"], settings["split"]) == (
        "deeplabv3plus",
        16,
        "val",
    )
    assert len(metrics["best_images"]) == len(metrics["worst_images"]) == 2
    captured = capsys.readouterr()
    printed = captured.out
    assert "per-class scores" in printed and "BF" in printed and "C (class avg acc)" in printed
    assert metrics["schema"] == "segkit.evaluate/2"
    # progress (not a terminal here: one line when done)
    assert "evaluating val: 6/6 img in " in captured.err
    _assert_documented(metrics)
    _assert_per_image_confusion(run, metrics)


def _assert_per_image_confusion(run: Path, metrics: dict) -> None:
    """per_image_confusion.npz sums back to metrics.json's global and trimap matrices."""
    with np.load(run / "per_image_confusion.npz") as npz:
        ids, cm, widths, bands = (npz[k] for k in ("ids", "confusion", "trimap_widths",
                                                   "trimap_confusion"))  # fmt: skip
    assert cm.shape == (6, 7, 7) and len(ids) == 6 and len(set(ids.tolist())) == 6
    assert (cm.sum(0) == np.asarray(metrics["confusion_matrix"])).all()
    assert widths.tolist() == metrics["trimap"]["widths"] and bands.shape == (6, 2, 7, 7)
    for w, band in enumerate(bands.sum(0)):
        assert scores_from_confusion(torch.from_numpy(band))["mIoU"] == pytest.approx(
            metrics["trimap"]["mIoU"][w]
        )
    assert (bands[:, 0] <= bands[:, 1]).all() and (bands[:, 1] <= cm).all()  # nested bands
    with np.load(run / "per_image_confusion.npz") as npz:
        bf, per_class = npz["bf"], npz["bf_per_class"]
    assert bf.shape == (6,) and per_class.shape == (6, 7)
    assert np.nanmean(bf) == pytest.approx(metrics["BF"]) and 0 <= metrics["BF"] <= 1
    assert (np.isnan(per_class) == (cm.sum(2) == 0)).all()  # NaN: class not in the image's GT
    assert not list(run.glob("*.tmp*"))


def _assert_documented(metrics: dict) -> None:
    """docs/metrics.md's example document names exactly the keys the task writes."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    block = doc.split("## `metrics.json`", 1)[1].split("```jsonc", 1)[1].split("```", 1)[0]
    documented = set(re.findall(r'"(\w+)"\s*:', block))
    written = set(metrics) | set(metrics["settings"]) | set(metrics["trimap"])
    written |= {k for entry in metrics["best_images"] for k in entry}
    assert written <= documented, f"undocumented metrics.json keys: {written - documented}"
    # the rest of the example's keys are class names of per_class_iou / per_class_acc
    assert documented - written <= set(VOC_CLASSES), documented - written - set(VOC_CLASSES)


def test_output_stride_8_multiscale_flip_and_slide(checkpoint, compose_eval):
    base = evaluate(compose_eval(f"ckpt_path={checkpoint}", *FAST, "eval.num_overlays=0"))
    os8 = evaluate(
        compose_eval(
            f"ckpt_path={checkpoint}", *FAST, "eval.output_stride=8", "eval.scales=[0.75,1.0,1.25]",
            "eval.flip=true", "eval.num_overlays=0",
        )
    )  # fmt: skip
    assert os8["settings"]["output_stride"] == 8 and os8["settings"]["flip"] is True
    assert os8["settings"]["scales"] == [0.75, 1.0, 1.25]
    assert os8["confusion_matrix"] != base["confusion_matrix"]  # the settings changed the answers
    # batch size 1 and a window as large as any image: slide == whole, exactly
    whole1 = evaluate(
        compose_eval(f"ckpt_path={checkpoint}", *FAST, "eval.batch_size=1", "eval.num_overlays=0")
    )
    slide = evaluate(
        compose_eval(
            f"ckpt_path={checkpoint}", *FAST, "eval.batch_size=1", "eval.mode=slide",
            "eval.window=96", "eval.stride=48", "eval.num_overlays=0",
        )
    )  # fmt: skip
    assert slide["confusion_matrix"] == whole1["confusion_matrix"]
    assert slide["settings"]["mode"] == "slide" and slide["settings"]["window"] == 96


def test_data_root_split_and_limit_overrides(checkpoint, compose_eval, data_root):
    metrics = evaluate(
        compose_eval(
            f"ckpt_path={checkpoint}", f"data.root={data_root}", *FAST, "eval.limit=3",
            "eval.split=train", "eval.num_overlays=3",
        )
    )  # fmt: skip
    assert metrics["num_images"] == 3 and metrics["settings"]["data_root"] == str(data_root)
    assert metrics["settings"]["split"] == "train"
    ids = {e["id"] for e in metrics["best_images"] + metrics["worst_images"]}
    assert ids == {"train_000000", "train_000001", "train_000002"}  # the first 3 of train.txt


def test_checkpoint_loader_rebuilds_the_trained_weights(checkpoint):
    model, cfg = load_segmentor(checkpoint)
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f"model.{key}"]), key
    assert not model.training and model.output_stride == 16 and cfg["data"]["num_classes"] == 7
    model8, _ = load_segmentor(checkpoint, output_stride=8)
    assert model8.output_stride == 8
    assert model.head.context.rates == (6, 12, 18) and model8.head.context.rates == (12, 24, 36)
    for key, value in model8.state_dict().items():  # same weights, only the dilations changed
        assert torch.equal(value, state[f"model.{key}"]), key


def test_missing_corrupt_and_foreign_checkpoints(compose_eval, tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        evaluate(compose_eval(f"ckpt_path={missing}", *FAST))
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="corrupt.ckpt is unreadable or corrupt"):
        evaluate(compose_eval(f"ckpt_path={corrupt}", *FAST))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(ValueError, match="foreign.ckpt holds no segkit run config"):
        evaluate(compose_eval(f"ckpt_path={foreign}", *FAST))


def test_class_count_mismatch_is_named(checkpoint, compose_eval):
    with pytest.raises(ValueError, match=r"21 classes \(data.num_classes\).*trained with 7"):
        evaluate(compose_eval(f"ckpt_path={checkpoint}", "data=voc", *FAST))


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("eval.mode=slid", "eval: mode must be 'whole' or 'slide', got 'slid'"),
        ("eval.backend=tensorrt", "eval: backend must be one of ('torch', 'onnxruntime'), got "),
    ],
)
def test_inference_settings_name_the_eval_node(checkpoint, compose_eval, override, line):
    """``InferenceSettings`` / ``BackendSettings`` name their arguments (``mode``); the evaluate
    task hands them the ``eval`` node's keys and names that node for the command line."""
    from segkit.cli.launch import UserError, run_task

    with pytest.raises(ValueError, match=f"^{re.escape(line.removeprefix('eval: '))}"):
        evaluate(compose_eval(f"ckpt_path={checkpoint}", *FAST, override))
    with pytest.raises(UserError) as refused:
        run_task("evaluate", compose_eval(f"ckpt_path={checkpoint}", *FAST, override))
    assert str(refused.value).startswith(line)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("eval.scales=[1.0,0]", "positive"),
        ("eval.scales=[-1.0]", "positive"),
        ("eval.output_stride=12", "output_stride"),
        ("eval.batch_size=0", "^batch_size must be an integer >= 1"),
        ("eval.device=tpu", "device"),
        ("eval.backend=tensorrt", r"^backend must be one of"),
        ("eval.threads=0", r"^threads must be >= 1"),
        ("eval.onnx_exporter=jit", r"^onnx_exporter must be one of .*, got 'jit'"),
    ],
)
def test_bad_eval_settings(checkpoint, compose_eval, override, match):
    with pytest.raises(ValueError, match=match):
        evaluate(compose_eval(f"ckpt_path={checkpoint}", *FAST, override))


@pytest.mark.slow  # a fresh interpreter importing torch + Hydra: ~6-11 s here
def test_script_reports_a_missing_checkpoint_in_one_line(tmp_path):
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "evaluate.py"), f"ckpt_path={tmp_path}/gone.ckpt",
         f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/h"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "gone.ckpt" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_evaluates_a_checkpoint_written_by_the_train_task(tmp_path, data_root, compose_eval):
    """The real format: a Lightning checkpoint from 2 training steps, read back and evaluated."""
    trained = train(
        compose_config(
            "train",
            [
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path / 'train'}",
                f"data.root={data_root}",
                *TINY_TRAIN,
                "trainer=cpu",
                "trainer.max_steps=2",
                "trainer.num_sanity_val_steps=0",
                "trainer.limit_val_batches=1",
                "trainer.enable_model_summary=false",
                "callbacks.progress_bar=null",
                "logger=none",
                "data.batch_size=2",
                "data.crop_size=64",
            ],
        )  # fmt: skip
    )
    metrics = evaluate(
        compose_eval(f"ckpt_path={trained['last_ckpt']}", *FAST, "eval.num_overlays=1")
    )
    assert metrics["num_images"] == 6 and metrics["settings"]["model"] == "deeplabv3plus"
    assert 0.0 <= metrics["pixel_acc"] <= 1.0


def test_a_checkpoint_storing_the_old_data_schema(checkpoint, compose_eval, tmp_path):
    """Checkpoints of segkit before dataset objects store ``data.dataset: <name>`` with
    ``options`` / ``synthetic``: evaluate asks in one line for the data group, and works with it."""
    ckpt = torch.load(checkpoint, weights_only=False)
    data = ckpt["hyper_parameters"]["cfg"]["data"]
    spec = {k: v for k, v in data.pop("dataset").items() if k not in ("_target_", "root")}
    data.update(dataset="synthetic", options=None,
                synthetic={"_target_": "segkit.data.SyntheticSpec", **spec})  # fmt: skip
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with pytest.raises(ValueError) as err:
        evaluate(compose_eval(f"ckpt_path={old}", *FAST, "data.root=/elsewhere"))
    message = str(err.value)
    assert "\n" not in message and str(old) in message and "data.dataset=synthetic" in message
    assert "name the data group on the command line, e.g. data=synthetic data.root=" in message
    group = [o for o in TINY_TRAIN if o.startswith("data")]
    metrics = evaluate(compose_eval(f"ckpt_path={old}", *group, f"data.root={data['root']}",
                                    *FAST, "eval.num_overlays=0"))  # fmt: skip
    assert metrics["num_images"] == 6


def test_a_data_group_on_the_command_line_replaces_the_stored_data(
    checkpoint, compose_eval, tmp_path
):
    other = tmp_path / "other_synthetic"
    metrics = evaluate(
        compose_eval(
            f"ckpt_path={checkpoint}", "data=synthetic", f"data.root={other}",
            "data.dataset.num_train=1", "data.dataset.num_val=3", "data.dataset.min_size=64",
            "data.dataset.max_size=64", "data.num_workers=0", *FAST, "eval.num_overlays=0",
        )
    )  # fmt: skip
    assert metrics["num_images"] == 3 and metrics["settings"]["data_root"] == str(other)
    (spec_folder,) = other.iterdir()  # synthetic data: one folder per generator spec
    assert (
        spec_folder / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt"
    ).is_file()
