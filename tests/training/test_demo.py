"""scripts/demo.py (what `make demo` runs) end to end on a tiny budget: both designs and the table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_demo():
    spec = importlib.util.spec_from_file_location("segkit_demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
def test_demo_trains_both_designs_and_prints_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells on a narrow terminal
    demo = _load_demo()
    demo.main(
        [
            "data.synthetic.num_train=16",
            "data.synthetic.num_val=4",
            "data.crop_size=64",
            "data.batch_size=8",
            "data.val_batch_size=4",
            "backbone.width_mult=0.35",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
            "module.warmup_steps=0",
            "callbacks.progress_bar=null",
        ]
    )
    out = capsys.readouterr().out
    for text in ("FCN-8s", "DeepLabv3+", "all-background", "output stride", "val mIoU"):
        assert text in out
    runs = list((tmp_path / "logs" / "demo").iterdir())
    assert len(runs) == 1
    for model in ("fcn", "deeplabv3plus"):
        assert (runs[0] / model / "metrics.json").is_file()
