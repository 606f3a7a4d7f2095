"""tasks._common helpers: user errors at the script edge, callback/logger groups."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from segkit.cli.jobs import exit_on_user_error, instantiate_group, instantiate_user
from segkit.cli.preflight import config_node, error_node


def test_user_error_becomes_one_line_and_exit_1(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGKIT_TRACEBACK", raising=False)

    @exit_on_user_error
    def job() -> None:
        raise FileNotFoundError("data root /x missing: set data.root")

    with pytest.raises(SystemExit) as err:
        job()
    assert err.value.code == 1
    assert capsys.readouterr().err.strip() == "error: data root /x missing: set data.root"
    monkeypatch.setenv("SEGKIT_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        job()


def test_a_script_edge_names_the_config_node_too(capsys: pytest.CaptureFixture, monkeypatch):
    """The scripts run outside Hydra (compare --fill, the demo) report as ``run_task`` does."""
    monkeypatch.delenv("SEGKIT_TRACEBACK", raising=False)

    @exit_on_user_error
    def job() -> None:
        with config_node("data"):
            raise ValueError("batch_size must be an integer >= 1, got 0")

    with pytest.raises(SystemExit):
        job()
    assert (
        capsys.readouterr().err.strip() == "error: data: batch_size must be an integer >= 1, got 0"
    )


def test_bugs_are_not_swallowed() -> None:
    @exit_on_user_error
    def job() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        job()


def test_instantiate_group_skips_null_and_names_bad_entries() -> None:
    cfg = OmegaConf.create(
        {"a": {"_target_": "pytorch_lightning.callbacks.LearningRateMonitor"}, "b": None}
    )
    objects = instantiate_group(cfg)
    assert [type(o).__name__ for o in objects] == ["LearningRateMonitor"]
    with pytest.raises(ValueError, match="entry 'x' has no _target_"):
        instantiate_group(OmegaConf.create({"x": {"foo": 1}}))


def test_instantiate_user_unwraps_builder_errors() -> None:
    cfg = OmegaConf.create(
        {"_target_": "segkit.backbones.base.check_output_stride", "output_stride": 12}
    )
    with pytest.raises(ValueError, match="^output_stride must be 8, 16 or 32") as err:
        instantiate_user(cfg)
    assert error_node(err.value) is None  # the root of the config: no node to name
    with pytest.raises(ValueError, match="^output_stride must be 8, 16 or 32") as err:
        instantiate_user(OmegaConf.create({"model": cfg}).model)
    assert error_node(err.value) == "model"  # Hydra's full_key, for the command line


def test_a_full_disk_leaves_the_previous_metrics_json_whole(tmp_path, monkeypatch) -> None:
    """A sibling of the checkpoint case: metrics.json / config.yaml were written in place, so a
    full disk left a truncated file under the final name."""
    import errno
    import json
    from pathlib import Path

    from segkit.cli.jobs import save_json

    path = tmp_path / "metrics.json"
    save_json({"status": "finished"}, path)
    real = Path.write_text

    def full(self, text, *args, **kwargs):
        real(self, text[:5], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(ValueError, match=r"cannot write .*metrics.json: No space left on device; "
                       r"the previous file is intact\. Free disk space"):  # fmt: skip
        save_json({"status": "finished", "more": 1}, path)
    assert json.loads(path.read_text()) == {"status": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
