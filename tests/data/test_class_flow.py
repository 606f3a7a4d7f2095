"""Class metadata flows from the dataset: into the model head and the SegModule, into the checkpoint,
and back out of it (evaluate / predict / export read it there); old checkpoints fall back, logged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_folder import write_folder

from segkit.cli.configs import compose_config
from segkit.cli.jobs import build_datamodule, to_plain
from segkit.tasks.checkpoints import load_trained
from segkit.tasks.train import build_module

TINY = [
    "data.num_workers=0",
    "backbone.width_mult=0.35",
    "model.aspp_channels=16",
    "model.decoder_channels=16",
    "model.low_level_channels=8",
    "trainer=cpu",
]


def _folder_cfg(tmp_path: Path):
    root = write_folder(tmp_path / "mine")
    return compose_config(
        "train",
        ["data=folder", f"data.root={root}", f"paths.output_dir={tmp_path / 'run'}", *TINY],
    )


def test_the_class_count_comes_from_the_classes_file_into_the_head(tmp_path):
    cfg = _folder_cfg(tmp_path)
    assert cfg.data.num_classes is None  # nowhere typed
    dm = build_datamodule(cfg)
    assert cfg.data.num_classes == 3 and cfg.model.num_classes == 3 and cfg.module.num_classes == 3
    module = build_module(cfg, classes=dm.classes)
    module.eval()
    with torch.no_grad():
        out = module.model(torch.zeros(1, 3, 64, 64))["out"]
    assert out.shape == (1, 3, 64, 64)
    assert module.classes == dm.classes and module.val_confmat.num_classes == 3


def _checkpoint(path: Path, module, cfg, *, with_classes: bool = True) -> Path:
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": {"cfg": to_plain(cfg), "num_classes": int(cfg.data.num_classes)},
    }
    module.on_save_checkpoint(ckpt)
    if not with_classes:  # as segkit wrote them then, in the data schema of that time
        ckpt["segkit"].pop("classes", None)
        data = ckpt["hyper_parameters"]["cfg"]["data"]
        data["dataset"] = "synthetic" if "num_train" in data["dataset"] else "voc"
    torch.save(ckpt, path)
    return path


def test_checkpoints_carry_the_classes(tmp_path):
    cfg = _folder_cfg(tmp_path)
    dm = build_datamodule(cfg)
    module = build_module(cfg, classes=dm.classes)
    path = _checkpoint(tmp_path / "a.ckpt", module, cfg)
    (tmp_path / "mine" / "classes.yaml").unlink()  # no data config needed any more
    trained = load_trained(path)
    assert trained.classes == dm.classes
    assert trained.classes.palette == ((0, 0, 0), (255, 0, 0), (0, 0, 255))


def test_a_checkpoint_whose_classes_do_not_fit_its_model_is_refused(tmp_path):
    cfg = _folder_cfg(tmp_path)
    dm = build_datamodule(cfg)
    module = build_module(cfg, classes=dm.classes)
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": {"cfg": to_plain(cfg)}}
    module.on_save_checkpoint(ckpt)
    ckpt["segkit"]["classes"]["names"] = ["a", "b"]
    ckpt["segkit"]["classes"]["palette"] = [[0, 0, 0], [1, 1, 1]]
    torch.save(ckpt, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="names 2 classes but its model has 3"):
        load_trained(tmp_path / "bad.ckpt")


def test_the_module_refuses_classes_of_another_count(tmp_path):
    cfg = _folder_cfg(tmp_path)
    dm = build_datamodule(cfg)
    with pytest.raises(
        ValueError, match="the dataset has 3 classes but num_classes=5: set num_classes=3"
    ):
        cfg.module.num_classes = 5
        build_module(cfg, classes=dm.classes)


def test_a_checkpoint_without_classes_is_refused(tmp_path):
    cfg = compose_config("train", ["data=synthetic", f"paths.output_dir={tmp_path / 'run'}", *TINY])
    module = build_module(cfg)
    path = _checkpoint(tmp_path / "bare.ckpt", module, cfg, with_classes=False)
    with pytest.raises(ValueError, match="carries no class metadata") as refused:
        load_trained(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_predict_needs_no_data_config_and_evaluate_names_a_missing_classes_file(tmp_path):
    import json
    import shutil

    import cv2
    import numpy as np
    from PIL import Image

    from segkit.tasks.evaluate import evaluate
    from segkit.tasks.predict import predict

    cfg = _folder_cfg(tmp_path)
    dm = build_datamodule(cfg)
    path = _checkpoint(tmp_path / "a.ckpt", build_module(cfg, classes=dm.classes), cfg)
    cv2.imwrite(str(tmp_path / "photo.png"), np.zeros((24, 32, 3), np.uint8))
    shutil.rmtree(tmp_path / "mine")  # the data is gone: predict reads the classes from the ckpt
    out = tmp_path / "preds"
    predict(compose_config("predict", [f"ckpt_path={path}", f"input={tmp_path / 'photo.png'}",
                                       f"output={out}", f"paths.output_dir={tmp_path / 'p'}"]))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["class_names"] == ["background", "crack", "rust"]
    palette = Image.open(out / "photo.png").getpalette()[:9]
    assert palette == [0, 0, 0, 255, 0, 0, 0, 0, 255]
    eval_cfg = compose_config(
        "evaluate", [f"ckpt_path={path}", f"paths.output_dir={tmp_path / 'e'}"]
    )
    with pytest.raises(FileNotFoundError, match=r"data root .*mine does not exist: set root to"):
        evaluate(eval_cfg)
