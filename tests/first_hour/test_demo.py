"""scripts/demo.py (what `make demo` runs): the side-by-side table reads at 80 columns (terminal or
log), the floor check replaces the ranking when a design learnt nothing, and a short schedule runs
end to end and writes the picture."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]


def _load_demo():
    spec = importlib.util.spec_from_file_location("segkit_demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


demo = _load_demo()


def _result(miou: float, backbone: str = "mobilenetv2", **kw) -> dict:
    return {"val/mIoU": miou, "val/pixel_acc": 0.9, "output_stride": 16, "backbone": backbone,
            "params": 12_345_678, "global_step": 400, "train_time_s": 1234.5, "train_cpu_s": 2222.2,
            "load_avg_1min": 7.41, **kw}  # fmt: skip


def _render(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 60])
def test_table_reads_in_a_narrow_terminal_and_a_log(width: int) -> None:
    results = {"fcn": _result(0.4512), "deeplabv3plus": _result(0.5123, backbone="xception65")}
    text = _render(demo.table(results, 0.1234), width)
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    for cell in ("FCN-8s", "DeepLabv3+", "mobilenetv2", "xception65", "0.451", "0.512", "0.123"):
        assert cell in text
    assert "2222 s" in text and "1234 s" in text and "7.4" in text and "12.35 M" in text
    assert "train CPU" in text and "train wall" in text and "load at end" in text


def test_no_ranking_when_a_design_is_at_the_floor() -> None:
    text = demo.verdict({"fcn": _result(0.14), "deeplabv3plus": _result(0.40)}, 0.12)
    assert "FCN-8s did not learn beyond the all-background floor" in text
    assert "no ranking" in text and "scored" not in text
    text = demo.verdict({"fcn": _result(0.45), "deeplabv3plus": _result(0.52)}, 0.12)
    assert text.startswith("DeepLabv3+ scored 7.0 points of val mIoU above FCN-8s in this run")
    assert "One seed" in text


@pytest.mark.slow
def test_demo_with_a_short_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A shortened demo (trainer.max_steps=20, the quickstart's warm-up untouched) trains both
    designs, prints the table within 80 columns (captured output = a log), the verdict and the
    picture's path; the picture exists."""
    monkeypatch.chdir(tmp_path)
    demo.main(
        [
            "data.dataset.num_train=16",
            "data.dataset.num_val=4",
            "data.crop_size=64",
            "data.batch_size=8",
            "data.val_batch_size=4",
            "backbone.width_mult=0.35",
            "trainer.max_steps=20",
            "callbacks.progress_bar=null",
        ]
    )
    out = capsys.readouterr().out
    assert "Total params" not in out  # no Lightning model summary: the demo's table has them
    table = out[out.index("FCN vs DeepLabv3+") : out.rindex("└")]
    assert "…" not in table and all(len(line) <= 80 for line in table.splitlines())
    for text in ("FCN-8s", "DeepLabv3+", "all-bg floor", "output stride", "val mIoU"):
        assert text in table
    assert "did not learn beyond" in out or " scored " in out
    (run,) = (tmp_path / "logs" / "demo").iterdir()
    for model in ("fcn", "deeplabv3plus"):
        assert (run / model / "metrics.json").is_file()
        log = (run / model / "train.log").read_text()  # as every run folder (README)
        assert f"segkit train; run folder: {run / model}" in log and "data check:" in log
    picture = run / "predictions.png"
    assert f"picture: {picture}" in out
    width, height = Image.open(picture).size
    assert width > height / 2  # 4 columns: image, ground truth, two designs
