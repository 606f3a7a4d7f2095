"""inspect_data on synthetic data: split sizes, class pixels (JSON), overlay grid."""

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from segkit.data import VOCSegmentation, save_mask
from segkit.tasks.inspect_data import inspect_data

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def _cfg(tmp_path, *extra):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose(
            config_name="inspect_data",
            overrides=[
                "data=synthetic",
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path}/run",
                "data.synthetic.num_train=5",
                "data.synthetic.num_val=2",
                "data.synthetic.min_size=40",
                "data.synthetic.max_size=56",
                "inspect.grid_samples=3",
                *extra,
            ],
        )


def test_inspect_writes_json_and_grid(tmp_path, capsys):
    out_json = tmp_path / "summary" / "out.json"
    summary = inspect_data(_cfg(tmp_path, f"inspect.json={out_json}"))
    assert json.loads(out_json.read_text()) == summary
    assert summary["splits"] == {"train": 5, "val": 2}
    assert list(summary["class_pixels"])[:2] == ["background", "warm_disc"]
    assert len(summary["class_pixels"]) == 7
    # the counts are the real label histogram of the generated masks
    root = tmp_path / "data" / "synthetic"
    hist = np.zeros(256, np.int64)
    for split in ("train", "val"):
        ds = VOCSegmentation(root, split, num_classes=7)
        for i in range(len(ds)):
            hist += np.bincount(ds.load_mask(i).ravel(), minlength=256)
    assert list(summary["class_pixels"].values()) == hist[:7].tolist()
    assert (tmp_path / "run" / "grid.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "class pixel frequencies" in printed and "warm_disc" in printed


def test_inspect_names_a_mask_with_bad_values(tmp_path):
    cfg = _cfg(tmp_path)
    inspect_data(cfg)
    bad = (
        tmp_path
        / "data"
        / "synthetic"
        / "VOCdevkit"
        / "VOC2012"
        / "SegmentationClass"
        / "val_000001.png"
    )
    save_mask(bad, np.full((40, 40), 9, np.uint8))
    with pytest.raises(ValueError, match=r"val_000001\.png has label values \[9\]"):
        inspect_data(cfg)


def test_script_missing_root_is_one_line_error(tmp_path, capsys):
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "inspect_data.py"
    spec = importlib.util.spec_from_file_location("segkit_inspect_data_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose(
            config_name="inspect_data",
            overrides=["data=voc", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}/r"],
        )
    with pytest.raises(SystemExit) as exit_:
        module.main(cfg)  # hydra.main passes a given config straight to the task function
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: data root {tmp_path}/data has no VOCdevkit") and "\n" not in err
    assert "download_voc.py" in err and "data=synthetic" in err
