"""SegDataModule on synthetic data, its batch contract, seeding, config group and errors."""

import shutil

import pytest
import torch
from hydra.utils import instantiate

from segkit.cli.configs import compose_config
from segkit.constants import IGNORE_INDEX
from segkit.data import VOC, SegDataModule, Synthetic, synthetic_folder_name


def _dm(root, **overrides) -> SegDataModule:
    spec = Synthetic(seed=1, num_train=8, num_val=3, min_size=40, max_size=64, num_classes=5)
    kwargs = dict(
        dataset=spec,
        root=root,
        num_classes=5,
        crop_size=48,
        batch_size=4,
        val_batch_size=3,
        num_workers=0,
        seed=0,
    )
    return SegDataModule(**{**kwargs, **overrides})


def test_batches_follow_the_contract(tmp_path):
    dm = _dm(tmp_path / "syn")
    dm.prepare_data()
    dm.setup("fit")
    assert dm.class_names == (
        "background",
        "warm_disc",
        "cool_disc",
        "warm_triangle",
        "cool_triangle",
    )
    train = list(dm.train_dataloader())
    assert len(train) == 2  # 8 images, batch 4, drop_last
    batch = train[0]
    assert batch["image"].shape == (4, 3, 48, 48) and batch["image"].dtype == torch.uint8
    assert batch["mask"].shape == (4, 48, 48) and batch["mask"].dtype == torch.uint8
    assert len(batch["id"]) == 4 and all(i.startswith("train_") for i in batch["id"])
    batches = list(dm.val_dataloader())  # whole images, batches of one size: nothing padded
    assert sorted(i for b in batches for i in b["id"]) == ["val_000000", "val_000001", "val_000002"]
    assert all(b["image"].shape[-2:] == b["mask"].shape[-2:] for b in batches)
    val = batches[0]
    assert (val["mask"] == IGNORE_INDEX).any()  # void borders
    out = dm.on_after_batch_transfer(val, 0)
    assert out["image"].dtype == torch.uint8  # the model normalises (segkit.models.Segmentor)
    assert out["mask"].dtype == torch.int64 and (out["mask"] == IGNORE_INDEX).any()


def test_same_seed_same_batches(tmp_path):
    first = next(iter(_dm(tmp_path / "a").train_dataloader()))
    again = next(iter(_dm(tmp_path / "a").train_dataloader()))
    assert torch.equal(first["image"], again["image"]) and first["id"] == again["id"]


def test_seeded_workers_are_reproducible_and_distinct(tmp_path):
    root = tmp_path / "w"
    dm = _dm(root)
    dm.prepare_data()
    # the same image under 8 ids: any difference between batches comes from the augmentation streams
    voc = dm.dataset.folder / "VOCdevkit/VOC2012"
    for k in range(1, 8):
        for folder, ext in (("JPEGImages", "jpg"), ("SegmentationClass", "png")):
            shutil.copyfile(voc / folder / f"train_000000.{ext}", voc / folder / f"copy{k}.{ext}")
    ids = ["train_000000", *(f"copy{k}" for k in range(1, 8))]
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")

    def epoch(seed):
        dm = _dm(root, num_workers=2, batch_size=1, seed=seed, scale_range=(0.5, 2.0))
        return [b["image"] for b in dm.train_dataloader()]

    a = epoch(0)
    assert all(torch.equal(x, y) for x, y in zip(a, epoch(0), strict=True))
    # batches 0 and 1 come from different workers: forked workers must not share one random stream
    assert not torch.equal(a[0], a[1])
    assert not all(torch.equal(x, y) for x, y in zip(a, epoch(1), strict=True))


def test_loader_settings(tmp_path):
    from segkit.data import seed_worker

    dm = _dm(tmp_path / "l", num_workers=2, pin_memory=True)
    train, val = dm.train_dataloader(), dm.val_dataloader()  # no worker starts before iteration
    for loader in (train, val):
        assert loader.num_workers == 2 and loader.persistent_workers
        assert loader.worker_init_fn is seed_worker
        assert loader.pin_memory == torch.cuda.is_available()  # pinning only helps a GPU copy
    assert train.drop_last and train.batch_size == 4
    # val: each loader item is one whole batch of at most val_batch_size equal-sized images
    assert val.batch_size is None and not val.drop_last
    assert not _dm(tmp_path / "l", num_workers=0).train_dataloader().persistent_workers


def test_voc_missing_root_fails_clearly_and_never_falls_back(tmp_path):
    dm = SegDataModule(dataset=VOC(tmp_path / "VOC_missing"), num_workers=0)
    with pytest.raises(
        FileNotFoundError, match=r"VOC_missing has no VOCdevkit.*download_voc\.py.*data=synthetic"
    ):
        dm.setup("fit")
    assert not (tmp_path / "VOC_missing").exists()


def test_voc_aug_without_trainaug_says_how_to_build(voc_root):
    dm = SegDataModule(dataset=VOC(voc_root, train_split="trainaug"), num_workers=0)
    with pytest.raises(
        FileNotFoundError,
        match=r"trainaug\.txt is missing: build it with `python scripts/download_voc\.py",
    ):
        dm.setup("fit")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"^num_classes=7 but Pascal VOC 2012 has 21 classes"):
        SegDataModule(dataset=VOC("data"), num_classes=7)
    with pytest.raises(ValueError, match="^num_classes=4 but the synthetic set has 5 classes"):
        _dm(tmp_path, num_classes=4)


@pytest.mark.parametrize("name", ["voc", "voc_aug", "synthetic"])
def test_config_group_instantiates(name, tmp_path):
    cfg = compose_config(
        "inspect_data",
        [f"data={name}", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}/out"],
    )
    for key in (
        "root",
        "num_classes",
        "crop_size",
        "scale_range",
        "batch_size",
        "val_batch_size",
        "num_workers",
    ):
        assert key in cfg.data
    dm = instantiate(cfg.data)
    assert isinstance(dm, SegDataModule) and len(dm.class_names) == cfg.data.num_classes
    assert isinstance(dm.dataset, Synthetic if name == "synthetic" else VOC)
    assert dm.dataset.train_split == ("trainaug" if name == "voc_aug" else "train")
    if name == "synthetic":
        assert dm.dataset.folder == tmp_path / "data/synthetic" / synthetic_folder_name(dm.dataset)
    # the split-only tasks build the dataset node alone
    assert instantiate(cfg.data.dataset) == dm.dataset
