"""The analyze task end to end on small inputs: JSON schema, files, checkpoints, user errors."""

import json
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.data.classes import ClassInfo
from segkit.tasks.analyze import JSON_KEYS, analyze, build_model

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")
KEYS = {"model", "backbone", "input_size", "output_stride", "logits_stride", "backbone_rf",
        "model_rf", "params", "backbone_params", "macs", "backbone_macs", "latency_ms",
        "peak_mem_mb", "stages", "erf"}  # fmt: skip
#: the issue's schema (KEYS) plus the documented additions: how it was measured, the checkpoint
EXTRA = {"threads", "latency_runs", "latency_spread", "latency_warning", "trace_meta",
         "erf_input_size", "erf_samples", "seconds", "ckpt_path", "aspp_rates"}  # fmt: skip
STAGE_KEYS = {"name", "stride", "dilation", "channels", "height", "width", "rf"}


def _cfg(tmp_path, *extra):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose(
            config_name="analyze",
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path}/run",
                "analyze.input_size=64",
                "analyze.erf_input_size=33",
                "analyze.erf_samples=1",
                "analyze.latency_runs=1",
                *extra,
            ],
        )


def test_deeplabv3plus_json_table_and_heatmap(tmp_path, capsys):
    out = tmp_path / "a.json"
    result = analyze(_cfg(tmp_path, f"analyze.json={out}", "model.output_stride=8"))
    assert set(result) == KEYS | EXTRA == set(JSON_KEYS) - {"erf_init"}
    assert json.loads(out.read_text()) == result
    assert json.loads((tmp_path / "run" / "analysis.json").read_text()) == result
    assert (tmp_path / "run" / "erf.png").stat().st_size > 1000
    assert (result["model"], result["backbone"]) == ("deeplabv3plus", "mobilenetv2")
    assert (result["output_stride"], result["logits_stride"]) == (8, 4)
    assert result["model_rf"] == "global"  # ASPP's image-pooling branch
    assert result["aspp_rates"] == [12, 24, 36]  # the rates it runs at OS 8
    assert result["backbone_rf"] == 491
    assert result["macs"] > result["backbone_macs"] > 0
    assert result["params"] > result["backbone_params"] > 0
    assert set(result["erf"]) == {"r50", "r90", "r99"}
    assert all(set(s) >= STAGE_KEYS for s in result["stages"])
    last_feature = [s for s in result["stages"] if s["name"].startswith("backbone.")][-1]
    assert (last_feature["stride"], last_feature["dilation"], last_feature["rf"]) == (8, 4, 491)
    printed = capsys.readouterr().out
    assert "logits stride 4" in printed and "backbone output 491" in printed
    # strides print as integers; the rounded ones are marked and explained
    table = printed.split("deeplabv3plus on mobilenetv2")[0].splitlines()[2:]  # rows only
    strides = [line.split()[4] for line in table if " x " in line]
    assert len(strides) > 5 and all(s.lstrip("~").isdigit() for s in strides)
    assert ("~" in "".join(strides)) == ("~N: rounded" in printed)


def test_fcn_rf_is_finite(tmp_path):
    result = analyze(
        _cfg(
            tmp_path,
            "model=fcn",
            "model.output_stride=32",
            "analyze.erf_input_size=null",
            "analyze.latency_runs=0",
        )
    )
    assert result["logits_stride"] == 8 and result["latency_ms"] is None
    assert result["aspp_rates"] is None  # FCN
    assert result["erf_input_size"] == [64, 64] and set(result["erf"]) == {"r50", "r90", "r99"}
    # FCN-8s: 491 (backbone) + two x2 transposed convs (+32, +16) + final bilinear x8 (+8)
    assert result["model_rf"] == 491 + 32 + 16 + 8


def _write_checkpoint(tmp_path, cfg, model) -> Path:
    plain = OmegaConf.to_container(cfg, resolve=True)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    classes = ClassInfo.numbered(plain["model"]["num_classes"]).to_dict()
    ckpt = {"hyper_parameters": {"cfg": plain}, "state_dict": state, "epoch": 1}
    ckpt["segkit"] = {"classes": classes}  # as the train task writes them
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    return path


def test_checkpoint_erf_and_weights(tmp_path):
    trained_cfg = _cfg(tmp_path, "model=deeplabv3", "model.output_stride=16")
    torch.manual_seed(3)
    model = instantiate(trained_cfg.model)
    with torch.no_grad():  # "trained" weights: visibly not the fresh initialisation
        for p in model.parameters():
            p.mul_(3.0)
    path = _write_checkpoint(tmp_path, trained_cfg, model)
    # the command line's model/backbone are ignored: the checkpoint's config wins
    cfg = _cfg(tmp_path, f"ckpt_path={path}", "model=fcn", "analyze.output_stride=8")
    loaded, _ = build_model(cfg)
    saved = model.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in loaded.state_dict().items())
    assert loaded.output_stride == 8
    result = analyze(cfg)
    assert result["model"] == "deeplabv3" and result["ckpt_path"] == str(path)
    assert set(result) == set(JSON_KEYS)
    assert result["output_stride"] == 8 and result["logits_stride"] == 8
    assert set(result["erf_init"]) == {"r50", "r90", "r99"}
    assert (tmp_path / "run" / "erf_init.png").exists()


def test_checkpoint_user_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        analyze(_cfg(tmp_path, f"ckpt_path={tmp_path}/missing.ckpt"))
    no_cfg = tmp_path / "no_cfg.ckpt"
    torch.save({"state_dict": {}}, no_cfg)
    with pytest.raises(ValueError, match="no segkit run config"):
        analyze(_cfg(tmp_path, f"ckpt_path={no_cfg}"))
    cfg = _cfg(tmp_path)
    plain = OmegaConf.to_container(cfg, resolve=True)
    no_model = tmp_path / "no_model.ckpt"
    torch.save({"hyper_parameters": {"cfg": plain}, "state_dict": {"x": torch.zeros(1)}}, no_model)
    with pytest.raises(ValueError, match="no 'model.\\*' weights"):
        analyze(_cfg(tmp_path, f"ckpt_path={no_model}"))
    wrong = tmp_path / "wrong.ckpt"
    torch.save(
        {"hyper_parameters": {"cfg": plain}, "state_dict": {"model.x": torch.zeros(1)}}, wrong
    )
    with pytest.raises(ValueError, match="does not fit"):
        analyze(_cfg(tmp_path, f"ckpt_path={wrong}"))


@pytest.mark.parametrize(
    ("override", "library", "command_line"),
    [
        ("analyze.input_size=4", "input_size must be >= 8", "analyze: input_size must be >= 8"),
        ("analyze.latency_runs=-1", "latency_runs must be", "analyze: latency_runs must be"),
        ("analyze.erf_samples=0", "erf_samples must be", "analyze: erf_samples must be"),
        # the analyze task's own message: its input is the config, it names the keys
        ("analyze.output_stride=8", "model.output_stride", "analyze.output_stride re-dilates"),
        ("model.output_stride=12", "output_stride must be 8, 16 or 32",
         "model: output_stride must be 8, 16 or 32, got 12 (e.g. output_stride=16)"),
        ("model.aspp_rates=[5,12,18]", "Use even rates (e.g. aspp_rates=[6,12,18])",
         "model: "),  # raised by the head, at build
        ("model.context=psp", "context must be one of", "model: context must be one of"),
        ("backbone.atrous_impl=s2b", "atrous_impl must be one of",
         "model: atrous_impl must be one of"),  # the model builder calls the backbone's
    ],
)  # fmt: skip
def test_bad_options_name_arguments_in_python_and_the_node_on_the_command_line(
    tmp_path, override, library, command_line
):
    """The library's message names the Python argument; the command line's (``run_task``) puts
    the config node before it: Hydra's ``full_key`` of the node being instantiated, the node the
    pre-flight checked or the one the analyze task read (``analyze``)."""
    from segkit.cli.launch import UserError, run_task

    extra = ["analyze.erf=false", "analyze.latency_runs=0", "model.output_stride=32"]
    cfg = _cfg(tmp_path, *extra, override)
    with pytest.raises(ValueError, match=re.escape(library)) as err:
        analyze(cfg)
    if "." not in library.split()[0]:  # the library names no config key
        assert not re.search(r"(analyze|model|backbone)\.\w+", str(err.value))
    with pytest.raises(UserError) as line:
        run_task("analyze", cfg)
    assert str(line.value).startswith(command_line) and library in str(line.value)


def test_erf_can_be_switched_off(tmp_path):
    result = analyze(
        _cfg(tmp_path, "model=deeplabv3", "analyze.erf=false", "analyze.latency_runs=0")
    )
    assert result["erf"] is None and result["erf_input_size"] is None
    assert not (tmp_path / "run" / "erf.png").exists()


def test_latency_budget_and_trace_as_warm_up(tmp_path, capsys):
    """Latency measured: the trace runs on the real input (the warm-up); the budget caps the timed
    runs. Latency skipped: the trace runs on the meta device."""
    budget = ["analyze.latency_runs=5", "analyze.latency_budget_s=1e-9"]
    timed = analyze(_cfg(tmp_path, "analyze.erf=false", *budget))
    assert (timed["latency_runs"], timed["trace_meta"]) == (1, False) and timed["latency_ms"] > 0
    # one run measures no spread: the figure is flagged, in the JSON and on screen
    assert timed["latency_spread"] is None
    assert timed["latency_warning"] == "only 1 timed run(s): spread not measured"
    printed = capsys.readouterr().out
    assert (
        "median of 1 run(s)" in printed
        and "[!] latency not to be trusted: only 1 timed run(s)" in printed
    )
    skipped = analyze(_cfg(tmp_path, "analyze.erf=false", "analyze.latency_runs=0"))
    assert (skipped["latency_runs"], skipped["trace_meta"]) == (None, True)
    # the same geometry and cost either way
    for key in ("stages", "macs", "model_rf", "backbone_rf"):
        assert timed[key] == skipped[key]
    # eval BN's meta kernel returns (C,) saved statistics where the CPU kernel returns (0,)
    assert timed["peak_mem_mb"] == pytest.approx(skipped["peak_mem_mb"], abs=0.05)
    with pytest.raises(ValueError, match="latency_budget_s"):
        analyze(_cfg(tmp_path, "analyze.erf=false", "analyze.latency_budget_s=0"))


def test_strides_print_as_integers_and_mark_the_rounded_ones():
    from segkit.analysis.summary import stride_text

    assert [stride_text(s) for s in (16.0, 4.0000000001, 16 * 33 / 129, 4 * 129 / 513)] == [
        "16", "4", "~4", "~1",
    ]  # fmt: skip
