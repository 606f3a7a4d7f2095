"""``benchmarks/bench_train.py --numerics`` at tiny sizes: every section's code runs (smp
included: `make test` installs the ``bench`` extra), the JSON holds what the report needs, and
the report says what was not measured and that a smoke run is no result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from helpers.camvid_tree import write_camvid

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--threads", "1", "--batch", "2", "--rounds", "1", "--warmup", "1", "--matmul", "64"]


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))


def _run(tmp_path: Path, *argv: str) -> tuple[dict, str]:
    import bench_train

    out, js = tmp_path / "report.md", tmp_path / "result.json"
    bench_train.main_numerics([*argv, "--json", str(js), "--out", str(out)])
    result = json.loads(js.read_text())
    assert not result.get("errors"), result["errors"]
    return result, out.read_text()


def test_train_section(tmp_path: Path) -> None:
    res, report = _run(tmp_path, "--sections", "train", *TINY, "--sizes", "32x48")
    rows = res["train"]["rows"]
    assert {(r["model"], r["numerics"]) for r in rows} == {
        (m, n) for m in ("segkit DeepLabv3+", "smp DeepLabV3Plus")
        for n in ("fp32", "bf16 + channels_last")
    }  # fmt: skip
    for r in rows:
        # backward: input and weight gradients, none for the input of the first conv
        assert 2.5 < r["step_gmac_per_image"] / r["fwd_gmac_per_image"] < 3
        assert r["images_per_s"] > 0 and r["achieved_gflop_s"] > 0
    assert set(res["train"]["peaks_gflop_s"]) == {"fp32", "bf16"}
    assert res["smoke"] and "SMOKE RUN" in report and "no verdict" in report
    assert report.count("not measured in this run") == 5  # profile, eval, compile, loader, rss


def test_profile_section(tmp_path: Path) -> None:
    res, _ = _run(tmp_path, "--sections", "profile", "--models", "deeplabv3plus", *TINY,
                  "--profile-size", "32x48")  # fmt: skip
    assert [v["numerics"] for v in res["profile"]["variants"]] == ["bf16 + channels_last", "fp32"]
    for v in res["profile"]["variants"]:
        seconds = v["seconds"]
        assert sum(seconds.values()) == pytest.approx(v["profiled_total"])
        assert seconds["conv dense"] > 0 and seconds["conv depthwise"] > 0
        assert seconds["batch norm"] > 0 and seconds["upsample"] > 0 and seconds["optimizer"] > 0
        assert v["gflop_s_by_kind"]["conv dense"] > 0 and v["gflop_s_by_kind"]["conv depthwise"] > 0


def test_eval_and_loader_sections(tmp_path: Path) -> None:
    camvid = write_camvid(tmp_path / "camvid")
    res, report = _run(
        tmp_path, "--sections", "eval,loader", *TINY, "--eval-batch", "1", "--eval-sizes",
        "32x32", "--eval-rounds", "1", "--onnx-exporter", "legacy", "--camvid", str(camvid),
        "--voc-images", "5", "--loader-rounds", "1", "--loader-max-batches", "1",
        "--recipe-overrides", "data.crop_size=32", "data.batch_size=2",
    )  # fmt: skip
    backends = {r["backend"]: r for r in res["eval"]["rows"]}
    assert set(backends) == {"torch fp32", "torch bf16 + channels_last", "onnxruntime"}
    assert backends["torch fp32"]["vs_torch_fp32"] == 1.0
    loaders = {(r["source"], r["loader"]) for r in res["loader"]["rows"]}
    workers = res["loader"]["workers_default"]
    assert workers == min(4, len(os.sched_getaffinity(0)))  # ${workers:4}
    assert loaders == {(s, k) for s in ("CamVid PNG", "VOC-sized JPEG (Folder)")
                       for k in (f"{workers} workers (default)", "1 process")}  # fmt: skip
    assert res["loader"]["transform"]["crop_size"] == 32
    # no training step measured: the loader has no model to compare with
    assert "× the model" in report and "model reference" not in report


def test_compile_section(tmp_path: Path) -> None:
    small = ["model=fcn", "model.fcn_variant=32s", "backbone=timm", "~backbone.width_mult",
             "backbone.model_name=test_resnet", "data.crop_size=32", "data.batch_size=2",
             "data.val_batch_size=1", "data.dataset.max_size=32"]  # fmt: skip
    res, report = _run(tmp_path, "--sections", "compile", *TINY, "--recipes", "quickstart",
                       "--compile-backend", "eager", "--compile-rounds", "1",
                       "--compile-warmup", "1", "--recipe-overrides", *small)  # fmt: skip
    (r,) = res["compile"]
    assert r["experiment"] == "quickstart" and r["max_steps"] == 400 and r["batch"] == 2
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert r["bf16"] == native and r["channels_last"]
    assert r["compile_seconds"] > 0 and r["val_size"] == [32, 32]
    assert "smoke run, no verdict" in report


def test_peak_rss_of_one_step_in_a_fresh_process() -> None:
    import train_numerics

    rss = train_numerics.peak_rss_mib(
        train_numerics.Variant("segkit DeepLabv3+", True), 2, (32, 32)
    )
    assert 0 < rss["before_mib"] <= rss["peak_mib"]


def test_report_of_a_full_run_checks_the_targets() -> None:
    import _numerics_report

    header = {
        "machine": "cpu",
        "logical_cores": 2,
        "torch": "t",
        "threads": 2,
        "python": "3",
        "date": "d",
        "command": "c",
        "load_start": [0.5, 0.5, 0.5],
        "load_end": [0.6] * 3,
    }
    t = {"best": 1.0, "spread": 0.1, "runs": [1.0, 1.1]}
    rows = [
        {
            "backend": b,
            "size": "8x8",
            "batch": 1,
            "batch_seconds": t,
            "images_per_s": 1.0,
            "vs_torch_fp32": v,
        }
        for b, v in (("torch fp32", 1.0), ("onnxruntime", 1.4))
    ]
    report = _numerics_report.render(
        {
            "header": header,
            "smoke": False,
            "eval": {"onnx_exporter": "dynamo", "onnx_export_seconds": 1.0, "rows": rows},
        }
    )
    assert "**1.40×** (target ≥ 1.5×: not met)" in report and "SMOKE" not in report
    assert "not a quiet machine" not in report
    loaded = _numerics_report.render({"header": {**header, "load_start": [3.0] * 3}})
    assert "not a quiet machine" in loaded and loaded.count("not measured in this run") == 6
    # at its end the load counts the benchmark's own 2 busy threads: that alone is still quiet
    busy = _numerics_report.render({"header": {**header, "load_end": [2.9, 2.0, 1.5]}})
    assert "not a quiet machine" not in busy
    shared = _numerics_report.render({"header": {**header, "load_end": [3.2, 2.0, 1.5]}})
    assert "not a quiet machine" in shared


def test_interleave_rotates_and_least_disturbed_is_the_minimum() -> None:
    from _helpers import interleave, least_disturbed

    calls: list[str] = []
    jobs = {n: (lambda n=n: calls.append(n) or float(len(calls))) for n in "abc"}
    values = interleave(jobs, 3)
    assert calls == list("abcbcacab") and values["a"] == [1.0, 6.0, 8.0]
    t = least_disturbed([2.0, 1.0, 4.0])
    assert (t["best"], t["median"], t["worst"], t["spread"]) == (1.0, 2.0, 4.0, 3.0)
