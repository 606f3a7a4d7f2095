"""scripts/run_camvid.py's logic with its steps stubbed: run states, resume, aborted runs moved
aside, a failed step, an interrupted one, --list; and its real ``step`` on tiny commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.compare_loader import load_script


@pytest.fixture
def runner():
    return load_script("run_camvid")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    (tmp_path / "CamVid" / "test").mkdir(parents=True)
    return tmp_path / "CamVid"


def _value(argv: list[str], key: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"{key}=")), None)


class FakeSteps:
    """Stands in for ``step``: records each command and writes what the real step would."""

    def __init__(self, runner, fail: str = "", stop: str = "") -> None:
        self.runner, self.fail, self.stop, self.calls = runner, fail, stop, []

    def __call__(self, root: Path, label: str, argv: list[str]) -> None:
        self.calls.append((label, argv))
        if self.stop and label.startswith(self.stop):
            raise self.runner.Stop(f"{label} was interrupted")
        if self.fail and label.startswith(self.fail):
            raise RuntimeError(f"{label} failed (exit 1)")
        out = Path(_value(argv, "hydra.run.dir"))
        out.mkdir(parents=True, exist_ok=True)
        if argv[0] == "scripts/train.py":
            best = out / "checkpoints" / "best.ckpt"
            best.parent.mkdir(exist_ok=True)
            best.write_bytes(b"")
            metrics = {"status": "finished", "best_ckpt": str(best), "global_step": 2500}
            (out / "metrics.json").write_text(json.dumps(metrics))
        elif argv[0] == "scripts/evaluate.py":
            (out / "metrics.json").write_text("{}")
            (out / "per_image_confusion.npz").write_bytes(b"")
        else:
            (out / "analysis.json").write_text("{}")

    def labels(self) -> list[str]:
        return [label for label, _ in self.calls]


def _main(runner, monkeypatch, tmp_path, data_root, fake, *args) -> int:
    monkeypatch.setattr(runner, "step", fake)
    root = tmp_path / "runs"
    return runner.main(["--root", str(root), "--data-root", str(data_root), "--no-doc", *args])


def test_training_states(runner, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert runner.training_state(folder) == "new"
    folder.mkdir()
    assert runner.training_state(folder) == "aborted"
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    (folder / "metrics.json").write_text(json.dumps({"status": "interrupted"}))
    assert runner.training_state(folder) == "resumable"
    (folder / "metrics.json").write_text(json.dumps({"status": "finished"}))
    assert runner.training_state(folder) == "finished"


def test_plan_runs_train_evaluate_analyse_with_todays_data_group(
    runner, monkeypatch, tmp_path, data_root
) -> None:
    fake = FakeSteps(runner)
    assert _main(runner, monkeypatch, tmp_path, data_root, fake, "--runs", "1") == 0
    assert fake.labels() == [
        "train deeplabv3plus seed 1",
        "evaluate deeplabv3plus seed 1 OS 16 (test)",
        "analyze deeplabv3plus seed 1 OS 16",
        "evaluate deeplabv3plus seed 1 OS 8 (test)",
        "analyze deeplabv3plus seed 1 OS 8",
    ]
    evaluate = fake.calls[1][1]
    # the data group first (today's config, not the checkpoint's), then its root
    assert evaluate.index("data=camvid") < evaluate.index(f"data.root={data_root.resolve()}")
    assert "eval.split=test" in evaluate and _value(fake.calls[3][1], "eval.output_stride") == "8"
    again = FakeSteps(runner)  # everything done: nothing runs again
    assert _main(runner, monkeypatch, tmp_path, data_root, again, "--runs", "1") == 0
    assert again.calls == []


def test_resume_from_last_ckpt_and_redo_an_unfinished_evaluation(
    runner, monkeypatch, tmp_path, data_root
) -> None:
    run = tmp_path / "runs" / "deeplabv3plus" / "seed1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / "metrics.json").write_text(json.dumps({"status": "interrupted", "global_step": 750}))
    (run / "eval_os16").mkdir()  # an evaluation that wrote metrics.json, not its matrices
    (run / "eval_os16" / "metrics.json").write_text("{}")
    fake = FakeSteps(runner)
    assert _main(runner, monkeypatch, tmp_path, data_root, fake, "--runs", "1") == 0
    train = fake.calls[0][1]
    assert _value(train, "ckpt_path") == str(run / "checkpoints" / "last.ckpt")
    assert "evaluate deeplabv3plus seed 1 OS 16 (test)" in fake.labels()


def test_aborted_run_is_moved_aside_and_started_again(
    runner, monkeypatch, tmp_path, data_root
) -> None:
    run = tmp_path / "runs" / "deeplabv3plus" / "seed1"
    run.mkdir(parents=True)
    (run / "train.log").write_text("died before its first checkpoint")
    fake = FakeSteps(runner)
    assert _main(runner, monkeypatch, tmp_path, data_root, fake, "--runs", "1") == 0
    aside = list((tmp_path / "runs.aborted").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith("deeplabv3plus-seed1-")
    assert (aside[0] / "train.log").is_file()
    assert _value(fake.calls[0][1], "ckpt_path") is None  # a fresh start


def test_failed_step_is_reported_the_next_run_continues_and_exit_is_1(
    runner, monkeypatch, tmp_path, data_root, capsys
) -> None:
    fake = FakeSteps(runner, fail="train deeplabv3plus seed 1")
    assert _main(runner, monkeypatch, tmp_path, data_root, fake, "--runs", "2") == 1
    assert fake.labels()[1] == "train fcn8s seed 1"  # the next run of the plan
    assert "analyze fcn8s seed 1 OS 32" in fake.labels()
    assert "1 step(s) failed: train deeplabv3plus seed 1 failed" in capsys.readouterr().err


def test_interrupted_step_stops_the_run_with_130(runner, monkeypatch, tmp_path, data_root) -> None:
    fake = FakeSteps(runner, stop="evaluate deeplabv3plus seed 1 OS 16")
    assert _main(runner, monkeypatch, tmp_path, data_root, fake, "--runs", "3") == 130
    assert fake.labels()[-1] == "evaluate deeplabv3plus seed 1 OS 16 (test)"


def test_list_shows_each_run_state(runner, tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    (root / "fcn8s" / "seed1").mkdir(parents=True)
    assert runner.main(["--root", str(root), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == runner.CORE_RUNS
    assert lines[0].split() == ["deeplabv3plus", "seed", "1:", "new"]
    assert lines[1].split() == ["fcn8s", "seed", "1:", "aborted"]
    assert runner.main(["--root", str(root), "--list", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(runner.PLAN)


def test_step_records_and_classifies_exit_codes(runner, tmp_path: Path) -> None:
    runner.step(tmp_path, "ok", ["-c", "pass"])
    with pytest.raises(RuntimeError, match="bad failed \\(exit 3\\)"):
        runner.step(tmp_path, "bad", ["-c", "import sys; sys.exit(3)"])
    with pytest.raises(runner.Stop, match="stopped was interrupted"):
        runner.step(tmp_path, "stopped", ["-c", "import sys; sys.exit(143)"])
    log = [json.loads(line) for line in (tmp_path / runner.STEPS_LOG).read_text().splitlines()]
    assert [(r["step"], r["rc"]) for r in log] == [("ok", 0), ("bad", 3), ("stopped", 143)]
    assert all(r["command"].startswith("python -c") and "CPUs" in r["machine"] for r in log)


def test_doc_only_writes_the_doc_of_an_empty_root(runner, tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "camvid.md"
    args = ["--root", str(tmp_path / "runs"), "--doc-only", "--doc", str(doc)]
    assert runner.main([*args, "--assets", str(tmp_path / "docs" / "camvid")]) == 0
    text = doc.read_text()
    assert "No step has run yet" in text and "13 of 13 planned runs are not done" in text
