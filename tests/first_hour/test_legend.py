"""Pictures a user opens first: every label picture says which colour is which class, evaluate's
best/worst rows say each image's mIoU, the confusion plot tells absent classes from wrong ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo
from segkit.evaluation.overlay import VOID_NAME, colour_lut, legend_image, present_labels
from segkit.evaluation.report import confusion_figure, label_grid, label_grid_figure
from segkit.tasks.evaluate import _overlay_rows
from segkit.tasks.inspect_data import json_output

NAMES = ClassInfo(names=("background", "cat", "dog", "bird"), background=0)
PALETTE = colour_lut(NAMES)


def _labels() -> np.ndarray:
    labels = np.zeros((16, 16), np.uint8)
    labels[2:6, 2:6] = 1  # cat
    labels[8:12, 8:12] = 3  # bird
    labels[0, :] = IGNORE_INDEX
    return labels


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_label_grid_has_a_legend_of_the_classes_drawn() -> None:
    image = np.full((16, 16, 3), 128, np.uint8)
    fig = label_grid_figure([[("img", image, None), ("gt", image, _labels())]], NAMES)
    assert _legend_texts(fig) == ["cat", "bird"]  # present objects only; dog absent, bg = image
    fig = label_grid_figure([[("gt", image, _labels())]], NAMES, void=True)
    assert _legend_texts(fig) == ["cat", "bird", VOID_NAME]
    fig = label_grid_figure([[("gt", image, _labels())]], NAMES, colour_maps=True)
    assert _legend_texts(fig) == ["background", "cat", "bird", VOID_NAME]


def test_label_grid_png_holds_the_legend_below_the_panels(tmp_path: Path) -> None:
    image = np.full((16, 16, 3), 128, np.uint8)
    with_classes = label_grid([[("gt", image, _labels())]], NAMES, tmp_path / "a.png")
    without = label_grid([[("img", image, None)]], NAMES, tmp_path / "b.png")
    assert Image.open(with_classes).size[1] > Image.open(without).size[1]  # the legend's rows


def test_present_labels_keeps_classes_and_void_only() -> None:
    labels = _labels()
    labels[15, 15] = 9  # not a class of a 4-class problem
    assert present_labels([labels], 4) == [0, 1, 3, IGNORE_INDEX]


def test_legend_image_draws_a_swatch_per_class() -> None:
    image = np.asarray(legend_image([1, 3], NAMES))
    for k in (1, 3):
        assert (image == PALETTE[k]).all(-1).sum() > 50  # the swatch
    assert (image == PALETTE[2]).all(-1).sum() == 0
    assert legend_image([1, 2, 3], NAMES).size[1] > legend_image([1], NAMES).size[1]


class _Dataset:
    ids = ["a", "b"]

    def load(self, i: int):
        return np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)


class _Evaluator:  # the kept predictions are used: nothing is predicted again
    pass


class _Result:
    image_ids = ["a", "b"]
    image_miou = [0.712, float("nan")]


def test_best_and_worst_rows_carry_each_images_miou() -> None:
    kept = {i: np.zeros((8, 8), np.uint8) for i in "ab"}
    rows = _overlay_rows(_Evaluator(), _Dataset(), _Result(), ["a"], ["b"], kept)  # type: ignore[arg-type]
    assert [r[0] for r in rows] == ["best: a (mIoU 71.2 %)", "worst: b (mIoU n/a)"]


def test_confusion_plot_marks_absent_classes_apart_from_always_wrong_ones() -> None:
    cm = np.array([[5, 1, 0], [3, 0, 0], [0, 0, 0]])  # class 1 always wrong, class 2 absent
    fig = confusion_figure(cm, ("bg", "wrong", "absent"))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["bg", "wrong", "absent (not in GT)"]
    data = ax.images[0].get_array()
    assert not data.mask[1].any() and data[1, 1] == 0  # a real zero: dark
    assert data.mask[2].all()  # no row to normalise: drawn as "bad" (grey, hatched)
    assert any(p.get_hatch() == "//" for p in ax.patches)


@pytest.mark.parametrize("name", ["stats.json", "sub/stats.json"])
def test_inspect_json_relative_name_lands_in_the_run_folder(tmp_path: Path, name: str) -> None:
    assert json_output(name, tmp_path / "run") == tmp_path / "run" / name
    assert json_output(str(tmp_path / "x.json"), tmp_path / "run") == tmp_path / "x.json"
