"""compare: run-folder discovery and joining, the markdown tables, the plots, the clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.compare import (
    comparison_tree,
    load_script,
    write_analysis_run,
    write_eval_run,
    write_train_run,
)
from segkit.cli.entry import run_compare
from segkit.compare.records import build_records, find_run_folders
from segkit.compare.stats import background_floor
from segkit.compare.table import sort_records
from segkit.tasks.compare import compare

doc = load_script("comparison_doc")

PLOTS = {"miou_vs_macs.png", "miou_vs_output_stride.png", "trimap.png", "erf.jpg", "cost.png"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("cmp") / "runs"
    return root, comparison_tree(root)


@pytest.fixture(scope="module")
def result(tree, tmp_path_factory: pytest.TempPathFactory):
    root, dirs = tree
    return compare([root, dirs["os8"]], out_dir=tmp_path_factory.mktemp("out"))


def _rows(md: str, title: str) -> list[list[str]]:
    """Cells of the data rows of the table under ``### title``."""
    section = md.split(f"### {title}")[1].split("###")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def test_rows_join_train_eval_and_analysis_by_checkpoint(result) -> None:
    labels = [r.label for r in result.records]
    assert labels == [
        "FCN-8s / mobilenetv2, OS 32",
        "DeepLabv3+ / mobilenetv2, OS 16",
        "DeepLabv3+ / mobilenetv2, OS 16->8",
    ]
    fcn, dl, dl8 = result.records
    assert fcn.miou == pytest.approx(0.5) and dl.miou == pytest.approx(0.6)
    assert dl8.miou == pytest.approx(7 / 11)  # the evaluation found outside the run root
    assert (dl8.output_stride, dl8.eval_output_stride) == (16, 8)
    assert dl8.analysis is None and "analysis (scripts/analyze.py ckpt_path=...)" in dl8.missing
    assert fcn.missing == [] and dl.missing == []
    assert fcn.analysis["model_rf"] != "global" and dl.analysis["model_rf"] == "global"


def test_accuracy_table_values(result) -> None:
    rows = _rows(result.section(), "Accuracy")
    header = result.section().split("### Accuracy")[1].splitlines()[2]
    assert "trimap mIoU ≤1 px (%)" in header and "trimap mIoU ≤4 px (%)" in header
    assert "| pixel acc (%) | class acc (%) | BF (%) |" in header  # SegNet's G, C, BF
    # #, design, backbone, OS, varies, seeds, mIoU, val mIoU, trimap 1, trimap 4, pixel acc,
    # class acc, BF, ASPP, steps, time; one seed each: no spread, and the cell says so
    one = ["1", "FCN-8s", "mobilenetv2", "32", "—", "42", "50.0 (n=1)", "40.0 (n=1)"]
    assert rows[0][:10] == [*one, "33.3 (n=1)", "50.0 (n=1)"]
    assert rows[1][:8] == ["2", "DeepLabv3+", "mobilenetv2", "16", "—", "42", "60.0 (n=1)",
                           "55.0 (n=1)"]  # fmt: skip
    assert rows[2][3] == "16 → 8 (eval)" and rows[2][6] == "63.6 (n=1)"
    assert rows[0][-3:] == ["—", "400", "123 (n=1)"]
    assert rows[0][12] == "—"  # evaluated without a boundary F1 (as before schema 2)
    # quickstart: 96 px crop -> 6x6 map at OS 16: rates 6/12/18 all degenerate, marked in the row
    assert rows[1][-3] == "**3 of 3 degenerate** (6/12/18 on 6×6)"


def test_cost_table_values_come_from_the_analysis(result) -> None:
    rows = _rows(result.section(), "Geometry and cost")
    fcn = result.records[0].analysis
    assert rows[0][4] == "64" and rows[0][5] == "8"  # input px, logits stride of FCN-8s
    assert rows[0][7] == str(fcn["model_rf"]) and rows[1][7] == "global"
    assert rows[0][8] == f"{fcn['erf']['r50']:.0f} (n=1)"
    assert rows[0][11] == f"{fcn['params'] / 1e6:.2f}" and rows[0][12] == f"{fcn['macs'] / 1e9:.3f}"
    assert rows[2][4:11] == ["—"] * 7  # OS 8 evaluation: no analysis at OS 8


def test_per_class_table(result) -> None:
    rows = _rows(result.section(), "Per-class IoU (%)")
    assert [r[:3] for r in rows] == [["1", "FCN-8s / mobilenetv2", "32"],
                                     ["2", "DeepLabv3+ / mobilenetv2", "16"],
                                     ["3", "DeepLabv3+ / mobilenetv2", "16 → 8 (eval)"]]  # fmt: skip
    assert rows[0][3:] == ["50.0 (n=1)", "50.0 (n=1)"]  # background, thing


def test_outputs_written(result) -> None:
    out = result.out_dir
    assert {p.name for p in result.plots} == PLOTS and result.skipped_plots == []
    assert all(p.stat().st_size > 5000 for p in result.plots)
    text = (out / "comparison.md").read_text()
    assert all(f"({name})" in text for name in PLOTS)  # links relative to the folder
    records = json.loads((out / "records.json").read_text())
    assert [r["mIoU"] for r in records] == pytest.approx([0.5, 0.6, 7 / 11])


def test_missing_pieces_are_columns_not_crashes(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_train_run(root / "a", "fcn", 32, best=0.3)
    (root / "b").mkdir(parents=True)
    (root / "b" / "config.yaml").write_text((root / "a" / "config.yaml").read_text())
    (root / "b" / "metrics.json").write_text("{not json")  # e.g. a run killed mid-write
    res = compare([root], out_dir=tmp_path / "out")
    by_dir = {r.dirs["train"].name: r for r in res.records}
    assert "b" in by_dir and "unreadable metrics.json (JSONDecodeError)" in by_dir["b"].missing[-1]
    assert by_dir["a"].miou == pytest.approx(0.3)  # no evaluation: the training val mIoU
    assert set(res.skipped_plots) == {"trimap", "erf", "cost", "miou_vs_macs"}
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "### Missing pieces" in md and "training metrics.json (seed 42)" in md


def test_multirun_folder_discovery_skips_hydra_subfolders(tmp_path: Path) -> None:
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    for n, sep in enumerate(("false", "true")):
        job = sweep / str(n)
        write_train_run(job, "deeplabv3plus", 16, best=0.5, extra=[f"model.separable={sep}"])
        (job / ".hydra").mkdir()
        (job / ".hydra" / "config.yaml").write_text("a: 1\n")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    folders = find_run_folders([tmp_path / "multiruns"])
    assert sorted(f.path.name for f in folders) == ["0", "1"]
    records = sort_records(build_records(folders))
    assert [r.varies for r in records] == [{"model.separable": False}, {"model.separable": True}]


def test_design_only_analysis_is_its_own_row(tmp_path: Path) -> None:
    write_analysis_run(tmp_path / "an", "fcn", 32, ckpt=None)
    (record,) = build_records(find_run_folders([tmp_path]))
    assert (record.design, record.output_stride, record.miou) == ("FCN-8s", 32, None)
    assert record.missing == []  # a design has no training or evaluation to miss


def test_dir_without_runs_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"empty holds no segkit run"):
        compare([tmp_path / "empty"], out_dir=tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"nope is not a directory"):
        compare([tmp_path / "nope"], out_dir=tmp_path / "out")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.yaml").write_text("task_name: inspect_data\n")
    with pytest.raises(ValueError, match=r"other: no training, evaluation or analysis run"):
        compare([tmp_path / "other"], out_dir=tmp_path / "out")


def test_compare_script_writes_and_prints(tree, tmp_path: Path, capsys) -> None:
    run_compare([str(tree[0]), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "### Accuracy" in out and "comparison of 2 rows written to" in out
    assert (tmp_path / "out" / "comparison.md").is_file()


def test_findings_without_per_image_matrices_claim_no_direction(result) -> None:
    """Old run folders (one seed, no per_image_confusion.npz) still compare, but no finding
    states a direction: there is no interval to support one."""
    text = "\n".join(doc.findings(result.groups))
    assert "**FCN vs DeepLabv3+**: DeepLabv3+ / mobilenetv2, OS 16 (60.0 % (1 seed)" in text
    assert "overall mIoU Δ = +10.0 points (no per-image confusion matrices" in text
    assert "OS 16->8 (63.6 % (1 seed), 1 seed(s)) vs" in text and "Δ = +3.6 points (no" in text
    assert "would score 25.0 % (the floor)" in text  # background = half the pixels, 2 classes
    assert "**The DeepLabv3+ decoder" not in text  # no DeepLabv3 row to compare it with
    assert " higher" not in text and " lower" not in text


def test_background_floor() -> None:  # from ground-truth pixels per class (confusion row sums)
    assert background_floor([10, 10]) == pytest.approx(0.25)
    assert background_floor([5, 0, 5]) == pytest.approx(0.5 / 2)
    assert background_floor([0, 0]) is None


def test_relative_checkpoint_path_is_taken_from_the_runs_working_dir(tmp_path, monkeypatch):
    work = tmp_path / "work"
    write_train_run(work / "t", "fcn", 32, best=0.3)
    ev = work / "e"
    write_eval_run(ev, Path("t/checkpoints/best.ckpt"), "fcn", trained_os=32, output_stride=32,
                   hit=4, miss=2)  # fmt: skip
    (ev / "config.yaml").write_text(f"paths:\n  root_dir: {work}\neval: {{}}\n")
    monkeypatch.chdir(tmp_path)  # compare runs from elsewhere
    (record,) = build_records(find_run_folders([work]))
    assert record.dirs == {"train": work / "t", "eval": ev}


def _per_image(seed: int, accuracy: float, n: int = 40) -> torch.Tensor:
    """(n, 2, 2) per-image matrices of a predictor right on about ``accuracy`` of the pixels."""
    gen = torch.Generator().manual_seed(seed)
    right = torch.binomial(torch.full((n, 2), 50.0), torch.full((n, 2), accuracy), generator=gen)
    out = torch.zeros(n, 2, 2, dtype=torch.int64)
    out[:, 0, 0], out[:, 1, 1] = right[:, 0].long(), right[:, 1].long()
    out[:, 0, 1], out[:, 1, 0] = 50 - right[:, 0].long(), 50 - right[:, 1].long()
    return out


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    """FCN-8s and DeepLabv3+ (OS 16, also evaluated at OS 8) with seeds 1-3 each, per-image
    matrices on disk: DeepLabv3+ right on ~85 % of the pixels, FCN on ~60 %."""
    root = tmp_path_factory.mktemp("seeded") / "runs"
    for seed in (1, 2, 3):
        for name, model, os_, acc in (("fcn", "fcn", 32, 0.6), ("dl", "deeplabv3plus", 16, 0.85)):
            run = root / name / f"seed{seed}"
            ckpt = write_train_run(run, model, os_, best=acc, extra=[f"seed={seed}"])
            for used in {os_, 8} if model != "fcn" else {os_}:
                write_eval_run(run / f"eval_os{used}", ckpt, model, trained_os=os_,
                               output_stride=used, hit=0, miss=0,
                               per_image=_per_image(10 * seed + used, acc))  # fmt: skip
    return compare([root], out_dir=tmp_path_factory.mktemp("seeded_out"))


def test_runs_differing_only_in_seed_are_one_row(seeded) -> None:
    assert len(seeded.records) == 9 and [g.n for g in seeded.groups] == [3, 3, 3]
    assert [g.seeds for g in seeded.groups] == [[1, 2, 3]] * 3
    rows = _rows(seeded.section(), "Accuracy")
    assert [r[5] for r in rows] == ["1, 2, 3"] * 3
    assert all(" ± " in r[6] for r in rows)  # mean ± std over seeds
    records = json.loads((seeded.out_dir / "records.json").read_text())
    assert sorted((r["row"], r["seed"]) for r in records)[:3] == [(1, 1), (1, 2), (1, 3)]


def test_findings_with_seeds_state_supported_directions(seeded) -> None:
    text = "\n".join(doc.findings(seeded.groups))
    fcn_vs_dl = next(line for line in text.splitlines() if "**FCN vs DeepLabv3+**" in line)
    assert "3 seed(s)) vs FCN-8s" in fcn_vs_dl and "overall mIoU higher (Δ = +" in fcn_vs_dl
    # OS 16 -> 8 at inference: both evaluations draw from the same distribution here
    os_line = next(line for line in text.splitlines() if "16 → 8 at inference" in line)
    assert "seeds resampled jointly" in os_line


def test_a_design_against_itself_is_no_difference(tmp_path: Path) -> None:
    """Two labels, one network distribution: the same design trained with seeds 1-3 and 4-6 (a
    no-op switch tells them apart) is reported as no measurable difference."""
    root = tmp_path / "runs"
    for seed in range(1, 7):
        run = root / f"s{seed}"
        extra = [f"seed={seed}", f"model.dropout={0.1 if seed <= 3 else 0.2}"]
        ckpt = write_train_run(run, "deeplabv3plus", 16, best=0.7, extra=extra)
        write_eval_run(run / "eval", ckpt, "deeplabv3plus", trained_os=16, output_stride=16,
                       hit=0, miss=0, per_image=_per_image(seed, 0.7))  # fmt: skip
    res = compare([root], out_dir=tmp_path / "out")
    a, b = res.groups
    assert (a.n, b.n) == (3, 3) and a.varies != b.varies
    text = doc.Pair(a, b).text()
    assert text.startswith("no measurable difference"), text


def test_builder_name_of_plain_and_omegaconf_nodes() -> None:
    from omegaconf import OmegaConf

    from segkit.runs import builder_name

    assert builder_name({"_target_": "segkit.models.fcn", "x": 1}) == "fcn"
    assert builder_name(OmegaConf.create({"_target_": "segkit.backbones.mobilenetv2"})) == (
        "mobilenetv2"
    )
    assert builder_name("segkit.models.deeplabv3plus") == "deeplabv3plus"
    assert builder_name({"width_mult": 0.5}) is None and builder_name(None) is None


def test_an_interrupted_training_is_named_with_its_resume_command(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_train_run(root / "done", "fcn", 32, best=0.3)
    write_train_run(root / "cut", "deeplabv3plus", 16, best=0.2)
    metrics_path = root / "cut" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.update(status="interrupted", global_step=120)
    metrics_path.write_text(json.dumps(metrics))
    res = compare([root], out_dir=tmp_path / "out")
    by_dir = {r.dirs["train"].name: r for r in res.records}
    cut = [m for m in by_dir["cut"].missing if "finished training" in m]
    assert cut == [
        "a finished training (status 'interrupted' at step 120 of 400: resume it with "
        f"ckpt_path={root / 'cut' / 'checkpoints' / 'last.ckpt'})"
    ]
    assert not [m for m in by_dir["done"].missing if "finished training" in m]
    assert "status 'interrupted' at step 120" in (tmp_path / "out" / "comparison.md").read_text()


@pytest.mark.parametrize(
    "recorded",
    [
        "python scripts/run_comparison.py --out-root logs/x --doc /tmp/c/comparison.md "
        "--assets /tmp/c/assets --seeds 1 2",
        "python scripts/run_comparison.py --out-root=logs/x --doc=/tmp/c/c.md --seeds 1 2",
    ],
)
def test_the_doc_shows_the_command_a_user_reruns_without_output_locations(recorded) -> None:
    assert doc.user_command(recorded) == "python scripts/run_comparison.py --seeds 1 2"


def test_the_committed_comparison_doc_names_no_temporary_path() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "comparison.md").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("- Command:")]
    assert "/tmp" not in line and "--doc" not in line and "--out-root" not in line
