"""A synthetic run root laid out as scripts/run_camvid.py lays it out: training folders (config,
metrics.json, Lightning CSV log), test evaluations on CamVid test frame ids (metrics.json and
per_image_confusion.npz in the keys of docs/metrics.md), analyses at 360x480, and the runner's
steps log. Per-frame accuracy follows an AR(1) walk along each sequence, so neighbouring frames are
correlated as in a video. Never real frames.

Written by hand with numpy, json and yaml, not with the tasks' writers: the doc generator imports
no torch, and these tests run beside a long training (a Hydra compose or a torch evaluation per run
would take minutes of a starved CPU). ``test_fixture_files_have_the_writers_keys`` checks the keys
against the real writers' documents (marked slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

CLASSES = ("Sky", "Building", "Road")
WIDTHS = (2, 8)
#: Test frames: two sequences, as CamVid's (0001TP then Seq05VD), shorter.
TEST_IDS = [f"0001TP_{8550 + 30 * i:06d}" for i in range(30)]
TEST_IDS += [f"Seq05VD_f{30 * i:05d}" for i in range(50)]
MODELS = {"fcn32s": ("fcn", 32), "fcn8s": ("fcn", 32), "deeplabv3": ("deeplabv3", 16)}
MODELS |= {"deeplabv3plus": ("deeplabv3plus", 16)}
#: Mean per-pixel accuracy of each design (its level; frames vary around it).
LEVEL = {"fcn32s": 0.55, "fcn8s": 0.62, "deeplabv3": 0.66, "deeplabv3plus": 0.70}


def per_frame_accuracy(design: str, seed: int, phi: float = 0.95) -> np.ndarray:
    """(N,) accuracy per test frame: a shared AR(1) walk per sequence (the scene; the same for every
    design), a design level and a small seed offset."""
    scene = np.random.default_rng(7)
    walk = []
    for length in (30, 50):
        x = np.zeros(length)
        for t in range(1, length):
            x[t] = phi * x[t - 1] + scene.normal(scale=0.05)
        walk.append(x)
    # the design's own slow errors: its paired differences are correlated along the video too
    own = np.random.default_rng(len(design))
    for part in walk:
        drift = np.zeros(len(part))
        for t in range(1, len(part)):
            drift[t] = phi * drift[t - 1] + own.normal(scale=0.01)
        part += drift
    offset = np.random.default_rng(seed).normal(scale=0.01)
    noise = np.random.default_rng(100 * seed + len(design)).normal(scale=0.01, size=len(TEST_IDS))
    return np.clip(LEVEL[design] + offset + np.concatenate(walk) + noise, 0.05, 0.98)


def per_image_confusion(accuracy: np.ndarray, pixels: int = 300) -> np.ndarray:
    """(N, K, K): each class has ``pixels / K`` pixels, a share ``accuracy`` of them right, the rest
    taken for the next class."""
    k, each = len(CLASSES), pixels // len(CLASSES)
    out = np.zeros((len(accuracy), k, k), dtype=np.int64)
    for n, acc in enumerate(accuracy):
        right = int(round(acc * each))
        for c in range(k):
            out[n, c, c], out[n, c, (c + 1) % k] = right, each - right
    return out


def write_train(root: Path, design: str, seed: int, *, status: str = "finished") -> Path:
    run = root / design / f"seed{seed}"
    model, os_ = MODELS[design]
    variant = {"fcn_variant": design[3:]} if model == "fcn" else {"context": "aspp"}
    cfg = {
        "task_name": "camvid", "tags": ["camvid"], "seed": seed,
        "model": {"_target_": f"segkit.models.{model}", "output_stride": os_, **variant},
        "backbone": {"_target_": "segkit.backbones.mobilenetv2", "weights": None,
                     "width_mult": 1.0, "_partial_": True},
        "data": {"dataset": "camvid", "root": "/nowhere", "crop_size": 320, "batch_size": 8},
        "trainer": {"max_steps": 2500}, "module": {"lr": 0.003, "class_weight": "median_frequency"},
    }  # fmt: skip
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    ckpt = run / "checkpoints" / ("best.ckpt" if status == "finished" else "last.ckpt")
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    steps = 2500 if status == "finished" else 750
    _json(
        {"status": status, "global_step": steps, "train_time_s": 3000.0 + seed,
         "output_stride": os_, "model": model, "backbone": "mobilenetv2",
         "val/mIoU_best": LEVEL[design] - 0.1, "params": 1_000_000,
         "best_ckpt": str(ckpt) if status == "finished" else None,
         "last_ckpt": str(run / "checkpoints" / "last.ckpt")},
        run / "metrics.json",
    )  # fmt: skip
    rows = ["step,train/loss,val/mIoU", "24,2.0000,"]  # the first logged step (every 25)
    for step in range(250, steps + 1, 250):  # climbs, then flat from step 1500
        val = LEVEL[design] - 0.1 - 0.3 * max(0, 1500 - step) / 1500
        rows += [f"{step - 1},{2.0 - step / 2500:.4f},", f"{step - 1},,{val:.4f}"]
    (run / "csv").mkdir()
    (run / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return ckpt


def write_eval(root: Path, design: str, seed: int, ckpt: Path, *, os_: int | None = None) -> dict:
    model, trained = MODELS[design]
    os_ = os_ or trained
    acc = per_frame_accuracy(design, seed) - (0.02 if os_ != trained else 0.0)
    per_image = per_image_confusion(acc)
    bf = np.repeat(acc[:, None] - 0.2, len(CLASSES), axis=1)  # (N, K)
    out = root / design / f"seed{seed}" / f"eval_os{os_}"
    out.mkdir(parents=True)
    np.savez_compressed(
        out / "per_image_confusion.npz", ids=np.asarray(TEST_IDS), confusion=per_image,
        trimap_widths=np.asarray(WIDTHS), trimap_confusion=np.stack([per_image] * len(WIDTHS), 1),
        bf=bf.mean(1), bf_per_class=bf,
    )  # fmt: skip
    cm = per_image.sum(0)
    tp, rows, cols = np.diag(cm), cm.sum(1), cm.sum(0)
    iou = tp / (rows + cols - tp)
    settings = {"ckpt_path": str(ckpt), "model": model, "backbone": "mobilenetv2",
                "trained_output_stride": trained, "output_stride": os_,
                "trimap_widths": list(WIDTHS), "split": "test"}  # fmt: skip
    metrics = {
        "schema": "segkit.evaluate/2", "settings": settings, "num_images": len(TEST_IDS),
        "mIoU": float(iou.mean()), "pixel_acc": float(tp.sum() / cm.sum()),
        "mean_class_acc": float((tp / rows).mean()), "fw_IoU": float((rows * iou).sum() / cm.sum()),
        "BF": float(bf.mean()), "class_names": list(CLASSES),
        "per_class_iou": dict(zip(CLASSES, iou.tolist(), strict=True)),
        "per_class_acc": dict(zip(CLASSES, (tp / rows).tolist(), strict=True)),
        "per_class_bf": dict(zip(CLASSES, bf.mean(0).tolist(), strict=True)),
        "confusion_matrix": cm.tolist(),
        "trimap": {"widths": list(WIDTHS), "mIoU": [float(iou.mean())] * len(WIDTHS)},
        "best_images": [], "worst_images": [],
    }  # fmt: skip
    _json(metrics, out / "metrics.json")
    return metrics


def _json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_analysis(root: Path, design: str, seed: int, ckpt: Path, *, os_: int | None = None):
    model, trained = MODELS[design]
    os_ = os_ or trained
    doc = {"model": model, "backbone": "mobilenetv2", "ckpt_path": str(ckpt),
           "input_size": [360, 480], "output_stride": os_, "params": 2_000_000 + 1000 * os_,
           "macs": 4e9 * 16 / os_, "latency_ms": 100.0 + seed, "peak_mem_mb": 50.0}  # fmt: skip
    _json(doc, root / design / f"seed{seed}" / f"analysis_os{os_}" / "analysis.json")


def write_run(root: Path, design: str, seed: int, strides=(None,)) -> dict[int | None, dict]:
    ckpt = write_train(root, design, seed)
    out = {}
    for os_ in strides:
        out[os_] = write_eval(root, design, seed, ckpt, os_=os_)
        write_analysis(root, design, seed, ckpt, os_=os_)
    log = {"step": f"train {design} seed {seed}", "command": "python scripts/train.py ...",
           "date": f"2026-12-0{seed} 10:00:00 UTC", "wall_s": 1800.0 * seed, "rc": 0,
           "machine": f"Test CPU, 2 CPUs, load 1.00, 1.00, {seed ** 2:.2f} (1/5/15 min)"}  # fmt: skip
    with (root / "steps.jsonl").open("a") as f:
        f.write(json.dumps(log) + "\n")
    return out
