"""tasks._common helpers: user errors at the script edge, callback/logger groups."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from segkit.tasks._common import exit_on_user_error, instantiate_group, instantiate_user


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
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32"):
        instantiate_user(cfg)
