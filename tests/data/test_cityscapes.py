"""Cityscapes reader on a tiny tree in the release layout (leftImg8bit/ + gtFine/ by city)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.data import SegDataModule, SegSplit, check_datasets
from segkit.data.cityscapes import (
    CITYSCAPES_INFO,
    LABEL_TO_TRAIN,
    Cityscapes,
)
from segkit.data.io import read_mask
from segkit.tasks.checkpoints import inference_settings

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")

#: split -> {city: number of frames}; the val cities are the real ones.
LAYOUT = {
    "train": {"aachen": 2, "bochum": 2},
    "val": {"frankfurt": 1, "lindau": 1, "munster": 1},
    "test": {"berlin": 1},
}
H, W = 32, 64  # small, with Cityscapes' 1:2 aspect


def frame_ids(split: str) -> list[str]:
    return [
        f"{city}/{city}_{seq:06d}_{19 + 10 * seq:06d}"
        for city, n in sorted(LAYOUT[split].items())
        for seq in range(n)
    ]


def label_id_mask(seed: int) -> np.ndarray:
    """Every labelId 0..33 in horizontal bands (void ones included), shuffled per frame."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(34).astype(np.uint8)
    return np.repeat(ids, -(-H * W // 34))[: H * W].reshape(H, W)


def write_cityscapes(root: Path) -> Path:
    """leftImg8bit/<split>/<city>/<id>_leftImg8bit.png + gtFine/.../<id>_gtFine_labelIds.png
    (and the _labelTrainIds / _color / _instanceIds files the release also has next to them)."""
    for split in LAYOUT:
        for k, image_id in enumerate(frame_ids(split)):
            image = np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8)
            mask = label_id_mask(k) if split != "test" else np.zeros((H, W), np.uint8)
            img_path = root / "leftImg8bit" / split / f"{image_id}_leftImg8bit.png"
            gt = root / "gtFine" / split / f"{image_id}_gtFine"
            img_path.parent.mkdir(parents=True, exist_ok=True)
            gt.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(img_path), image)
            cv2.imwrite(f"{gt}_labelIds.png", mask)
            lut = np.full(256, 255, np.uint8)
            for label_id, train_id in LABEL_TO_TRAIN.items():
                lut[label_id] = train_id
            cv2.imwrite(f"{gt}_labelTrainIds.png", lut[mask])
            cv2.imwrite(f"{gt}_instanceIds.png", mask.astype(np.uint16) * 1000)
            cv2.imwrite(f"{gt}_color.png", image)
    return root


@pytest.fixture
def cs_root(tmp_path: Path) -> Path:
    return write_cityscapes(tmp_path / "cityscapes")


def test_splits_list_every_frame_in_city_order(cs_root):
    for split in LAYOUT:
        ds = Cityscapes(cs_root).split(split)
        assert isinstance(ds, SegSplit)
        assert ds.ids == frame_ids(split) and len(ds) == sum(LAYOUT[split].values())
        assert ds.repeated == {} and ds.split_path == cs_root / "leftImg8bit" / split
    ds = Cityscapes(cs_root).split("val")
    assert ds.image_path(ds.ids[0]).name == "frankfurt_000000_000019_leftImg8bit.png"
    assert ds.mask_path(ds.ids[0]).name == "frankfurt_000000_000019_gtFine_labelIds.png"


def test_label_ids_become_the_19_train_ids_and_the_rest_void(cs_root):
    ds = Cityscapes(cs_root).split("train")
    raw = label_id_mask(0)
    image, mask = ds.load(0)
    assert image.shape == (H, W, 3) and mask.dtype == np.uint8
    expected = np.full_like(raw, 255)
    for label_id, train_id in {7: 0, 8: 1, 11: 2, 24: 11, 26: 13, 31: 16, 33: 18}.items():
        expected[raw == label_id] = train_id
    for label_id in (12, 13, 17, 19, 20, 21, 22, 23, 25, 27, 28, 32):
        expected[raw == label_id] = LABEL_TO_TRAIN[label_id]
    # unlabeled, ego vehicle, rect. border, out of roi, static, dynamic, ground, parking, rail
    # track, guard rail, bridge, tunnel, polegroup, caravan, trailer: void
    assert set(range(34)) - set(LABEL_TO_TRAIN) == {0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18,
                                                    29, 30}  # fmt: skip
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(ds.load_mask(0), expected)
    assert set(np.unique(mask)) == set(range(19)) | {255}


def test_label_train_id_files_give_the_same_masks(cs_root):
    ids = Cityscapes(cs_root).split("val")
    train_ids = Cityscapes(cs_root, masks="labelTrainIds").split("val")
    assert train_ids.mask_path(train_ids.ids[0]).name.endswith("_gtFine_labelTrainIds.png")
    for i in range(len(ids)):
        np.testing.assert_array_equal(ids.load(i)[1], train_ids.load(i)[1])


def test_classes_names_and_palette():
    assert CITYSCAPES_INFO.num_classes == 19 and CITYSCAPES_INFO.background is None
    assert CITYSCAPES_INFO.names[:3] == ("road", "sidewalk", "building")
    assert CITYSCAPES_INFO.names[-1] == "bicycle"
    assert CITYSCAPES_INFO.palette[0] == (128, 64, 128)
    assert CITYSCAPES_INFO.palette[13] == (0, 0, 142)  # car


def test_missing_root_names_the_archives_and_where(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        Cityscapes(root).split("train")
    message = str(err.value)
    assert "\n" not in message and str(root) in message
    for needle in ("gtFine_trainvaltest.zip", "leftImg8bit_trainvaltest.zip", "account",
                   "cityscapes-dataset.com", f"unzip both into {root}"):  # fmt: skip
        assert needle in message


def test_half_unpacked_root_names_the_missing_archive(cs_root):
    import shutil

    shutil.rmtree(cs_root / "gtFine")
    with pytest.raises(FileNotFoundError, match=r"gtFine/val is missing \(from gtFine_trainval"):
        Cityscapes(cs_root).split("val")


def test_value_outside_the_label_ids_is_named(cs_root):
    ds = Cityscapes(cs_root).split("val")
    bad = label_id_mask(0)
    bad[0, :3] = 40
    cv2.imwrite(str(ds.mask_path(ds.ids[1])), bad)
    with pytest.raises(ValueError, match=r"has values \[40\] that are not Cityscapes labelIds"):
        ds.load(1)
    report = check_datasets([Cityscapes(cs_root).split("val", check_files=False)])
    assert len(report.defects) == 1 and "label values [40]" in str(report.defects[0])


def test_wrong_mask_size_and_missing_mask(cs_root):
    ds = Cityscapes(cs_root).split("val")
    cv2.imwrite(str(ds.mask_path(ds.ids[0])), np.zeros((H, W - 1), np.uint8))
    with pytest.raises(ValueError, match=r"is 63x32 \(WxH\) but its image is 64x32"):
        ds.load(0)
    ds.mask_path(ds.ids[2]).unlink()
    with pytest.raises(FileNotFoundError, match=r"munster_000000_000019_gtFine_labelIds\.png .*"
                       r"missing: re-extract gtFine_trainvaltest\.zip"):  # fmt: skip
        Cityscapes(cs_root).split("val")
    report = check_datasets([Cityscapes(cs_root).split("val", check_files=False)])
    assert len(report.defects) == 2


def test_unknown_split_and_option(cs_root):
    with pytest.raises(ValueError, match=r"Cityscapes has splits train, val, test, got 'coarse'"):
        Cityscapes(cs_root).split("coarse")
    with pytest.raises(ValueError, match=r"^masks must be 'labelIds' or 'labelTrainIds'"):
        Cityscapes(cs_root, masks="color")


def _data_config(cs_root: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=["data=cityscapes", f"data.root={cs_root}", *overrides])


def test_data_config_trains_on_crops_and_carries_sliding_inference(cs_root):
    cfg = _data_config(cs_root, "data.crop_size=24", "data.batch_size=2", "data.num_workers=0")
    assert cfg.data.crop_size == 24 and cfg.data.num_classes == 19
    dm = instantiate(cfg.data, _convert_="all")
    assert dm.classes == CITYSCAPES_INFO
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["image"].shape) == (2, 3, 24, 24)
    assert set(np.unique(batch["mask"].numpy())) <= set(range(19)) | {255}
    val = next(iter(dm.val_dataloader()))
    assert tuple(val["image"].shape[-2:]) == (H, W)  # validation: whole images
    # evaluate / predict: eval.mode etc. null -> the data config's sliding window
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        eval_cfg = compose("evaluate", overrides=["ckpt_path=x"])
    data = OmegaConf.to_container(cfg.data, resolve=True)
    settings = inference_settings(eval_cfg.eval, data["inference"])
    assert (settings.mode, settings.window, settings.stride) == ("slide", 769, 513)
    eval_cfg.eval.mode = "whole"  # a key set explicitly wins
    assert inference_settings(eval_cfg.eval, data["inference"]).mode == "whole"
    assert inference_settings(eval_cfg.eval, None).window == 513


def test_wrong_class_count_is_refused(cs_root):
    with pytest.raises(ValueError, match=r"^num_classes=21 but Cityscapes has 19 classes"):
        SegDataModule(dataset=Cityscapes(cs_root), num_classes=21)


@pytest.mark.parametrize(
    "recipe",
    ["fcn8s_mobilenetv2", "deeplabv3_mobilenetv2", "deeplabv3plus_mobilenetv2",
     "deeplabv3plus_xception65"],
)  # fmt: skip
def test_recipes_compose_follow_the_protocol_and_build(recipe, tmp_path):
    text = (Path(CONFIG_DIR) / "experiment" / "cityscapes" / f"{recipe}.yaml").read_text()
    assert "not verified here" in text and ("mIoU on val" in text or "No published figure" in text)
    cfg = _data_config(
        tmp_path, f"experiment=cityscapes/{recipe}", "backbone.weights=null",
        f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}",
    )  # fmt: skip
    assert cfg.data.dataset._target_ == "segkit.data.Cityscapes" and cfg.data.num_classes == 19
    assert (cfg.data.crop_size, list(cfg.data.scale_range)) == (769, [0.5, 2.0])
    assert cfg.data.inference.mode == "slide" and cfg.module.num_classes == 19
    assert cfg.trainer.max_steps % cfg.trainer.val_check_interval == 0  # last step validated
    design = recipe.split("_")[0].replace("fcn8s", "fcn")
    assert cfg.model._target_ == f"segkit.models.{design}"
    model = instantiate(cfg.model)
    assert model.backbone.output_stride == cfg.model.output_stride


#: A narrow DeepLabv3+ for a few CPU steps (the training tests' sizes).
TINY_RUN = [
    "data.crop_size=32", "data.batch_size=2", "data.val_batch_size=2", "data.num_workers=0",
    "backbone.width_mult=0.35", "backbone.weights=null", "model.aspp_channels=16",
    "model.decoder_channels=16", "model.low_level_channels=8", "trainer=cpu",
    "trainer.max_steps=2", "trainer.num_sanity_val_steps=0", "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null", "logger=none",
]  # fmt: skip


def train_evaluate_predict(
    data: str, root: Path, tmp_path: Path, images: Path
) -> tuple[dict, dict]:
    """The real tasks on ``data=<data>``: train 2 steps, evaluate the checkpoint, predict ``images``
    (a folder); returns (metrics.json, predict summary)."""
    from segkit.tasks.evaluate import evaluate
    from segkit.tasks.predict import predict
    from segkit.tasks.train import train

    run = tmp_path / "train"
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        train_cfg = compose("train", overrides=[
            f"data={data}", f"data.root={root}", f"paths.root_dir={tmp_path}",
            f"paths.output_dir={run}", *TINY_RUN,
        ])  # fmt: skip
        train(train_cfg)
        ckpt = run / "checkpoints" / "last.ckpt"
        metrics = evaluate(compose("evaluate", overrides=[
            f"ckpt_path={ckpt}", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'ev'}",
            "eval.device=cpu", "eval.trimap_widths=[1]", "eval.num_overlays=1",
        ]))  # fmt: skip
        summary = predict(compose("predict", overrides=[
            f"ckpt_path={ckpt}", f"input={images}", f"output={tmp_path / 'pred'}",
            f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'pr'}",
            "predict.device=cpu",
        ]))  # fmt: skip
    return metrics, summary


@pytest.mark.slow
def test_train_evaluate_predict_on_cityscapes(cs_root, tmp_path):
    metrics, summary = train_evaluate_predict(
        "cityscapes", cs_root, tmp_path, cs_root / "leftImg8bit" / "test" / "berlin"
    )
    settings = metrics["settings"]
    assert (settings["dataset"], settings["split"]) == ("cityscapes", "val")
    assert (settings["mode"], settings["window"], settings["stride"]) == ("slide", 769, 513)
    assert metrics["num_images"] == 3 and list(metrics["per_class_iou"]) == list(
        CITYSCAPES_INFO.names
    )
    assert summary["written"] == 1 and summary["class_names"][0] == "road"
    label = read_mask(tmp_path / "pred" / "berlin_000000_000019_leftImg8bit.png")
    assert label.shape == (H, W) and label.max() < 19


def test_options_from_a_task_config(cs_root):
    """``data.dataset.masks=...`` reaches the dataset object; a mistyped key is named in one line."""
    from segkit.cli.hints import check_target_arguments

    cfg = _data_config(cs_root, "data.dataset.masks=labelTrainIds")
    dataset = instantiate(cfg.data.dataset)
    assert dataset.masks == "labelTrainIds" and Path(dataset.root) == cs_root
    with pytest.raises(
        ValueError, match=r"data.dataset.colour is not an argument of segkit.data.Cityscapes"
    ):
        check_target_arguments(_data_config(cs_root, "+data.dataset.colour=1"))
