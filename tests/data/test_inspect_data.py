"""inspect_data on synthetic data: every sample checked and every defect listed, split sizes, class
pixels (JSON), overlay grid."""

import json

import numpy as np
import pytest

from segkit.cli.configs import compose_config
from segkit.cli.launch import UserError, run_task
from segkit.data import save_mask, voc_split
from segkit.tasks.inspect_data import inspect_data


def _cfg(tmp_path, *extra):
    return compose_config(
        "inspect_data",
        [
            "data=synthetic",
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path}/run",
            "data.dataset.num_train=5",
            "data.dataset.num_val=2",
            "data.dataset.min_size=40",
            "data.dataset.max_size=56",
            "inspect.grid_samples=3",
            *extra,
        ],
    )


def _voc_dir(tmp_path):
    (folder,) = (tmp_path / "data" / "synthetic").iterdir()  # the one spec's folder
    return folder / "VOCdevkit" / "VOC2012"


def test_inspect_writes_json_and_grid(tmp_path, capsys):
    out_json = tmp_path / "summary" / "out.json"
    summary = inspect_data(_cfg(tmp_path, f"inspect.json={out_json}"))
    assert json.loads(out_json.read_text()) == summary
    assert summary["splits"] == {"train": 5, "val": 2}
    assert summary["defect_count"] == 0 and summary["defects"] == []
    assert list(summary["class_pixels"])[:2] == ["background", "warm_disc"]
    assert len(summary["class_pixels"]) == 7
    # the counts are the real label histogram of the generated masks
    root = _voc_dir(tmp_path)
    hist = np.zeros(256, np.int64)
    for split in ("train", "val"):
        ds = voc_split(root, split, num_classes=7)
        for i in range(len(ds)):
            hist += np.bincount(ds.load_mask(i).ravel(), minlength=256)
    assert list(summary["class_pixels"].values()) == hist[:7].tolist()
    assert summary["void_pixels"] == hist[255]
    assert (tmp_path / "run" / "grid.png").stat().st_size > 1000
    assert (tmp_path / "run" / "defects.txt").read_text() == ""
    captured = capsys.readouterr()
    assert "class pixel frequencies" in captured.out and "warm_disc" in captured.out
    assert "no defect found" in captured.out
    assert "checking (full, " in captured.err and "7/7" in captured.err  # the progress bar


def test_inspect_lists_every_defect_of_every_split(tmp_path, capsys):
    """Inspection decoded only the grid's images, so a truncated JPEG or a size
    mismatch later in a split passed it and then failed training."""
    out_json = tmp_path / "out.json"
    cfg = _cfg(tmp_path, f"inspect.json={out_json}", "inspect.grid_samples=8")
    inspect_data(cfg)
    voc = _voc_dir(tmp_path)
    jpeg = voc / "JPEGImages" / "val_000001.jpg"  # the last val image
    jpeg.write_bytes(jpeg.read_bytes()[:-200])
    save_mask(voc / "SegmentationClass" / "train_000004.png", np.zeros((12, 13), np.uint8))
    save_mask(voc / "SegmentationClass" / "train_000000.png", np.full((40, 40), 9, np.uint8))
    capsys.readouterr()
    with pytest.raises(ValueError) as err:
        inspect_data(cfg)
    msg = str(err.value)
    assert msg.startswith("4 defects (train 3, val 1) in 7 samples, all listed in ")
    listed = (tmp_path / "run" / "defects.txt").read_text().splitlines()
    assert len(listed) == 4
    assert listed[0].startswith("[train train_000000] mask file") and "is 40x40" in listed[0]
    assert "train_000000.png has label values [9]" in listed[1]
    assert listed[2].startswith("[train train_000004]") and "is 13x12 (WxH)" in listed[2]
    assert listed[3].startswith("[val val_000001] image file") and "corrupt" in listed[3]
    summary = json.loads(out_json.read_text())  # written before the error
    assert summary["defect_count"] == 4 and summary["splits"] == {"train": 5, "val": 2}
    assert [d["id"] for d in summary["defects"]] == ["train_000000"] * 2 + [
        "train_000004",
        "val_000001",
    ]
    out = capsys.readouterr().out
    assert "4 defects" in out and "val_000001" in out
    assert (tmp_path / "run" / "grid.png").is_file()  # drawn from the samples without defects


def test_inspect_shows_a_few_and_files_all(tmp_path, capsys):
    cfg = _cfg(tmp_path, "inspect.show=1")
    inspect_data(cfg)
    for path in (_voc_dir(tmp_path) / "JPEGImages").glob("*.jpg"):
        path.write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"^7 defects \(train 5, val 2\) in 7 samples"):
        inspect_data(cfg)
    assert "... and 6 more: all listed in" in capsys.readouterr().out
    assert len((tmp_path / "run" / "defects.txt").read_text().splitlines()) == 7


def test_script_exits_1_on_defects(tmp_path):
    cfg = _cfg(tmp_path)
    inspect_data(cfg)
    (_voc_dir(tmp_path) / "SegmentationClass" / "val_000000.png").unlink()
    # the task raises (a multirun must survive it); the script prints it and exits 1
    # (tests/cli/test_cli_failures.py)
    with pytest.raises(UserError) as exit_:
        run_task("inspect_data", cfg)  # what the script's Hydra job runs
    err = str(exit_.value)
    assert "1 defect (val 1) in 7 samples" in err and "val_000000.png is missing" in err


def test_script_missing_root_is_one_line_error(tmp_path):
    cfg = compose_config(
        "inspect_data",
        ["data=voc", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}/r"],
    )
    # hydra.main passes a given config straight to the task function, which raises (never exits:
    # a multirun must survive it); scripts print it in one line (tests/cli/test_cli_failures.py)
    with pytest.raises(UserError) as exit_:
        run_task("inspect_data", cfg)
    err = str(exit_.value)
    # the pre-flight's refusal, named by the node it checked (the dataset's root)
    assert err.startswith(f"data.dataset: data root {tmp_path}/data has no VOCdevkit")
    assert "\n" not in err
    assert "download_voc.py" in err and "data=synthetic" in err
