"""torch.compile on the CPU, per training recipe: the seconds compiling costs against the seconds
it saves per step, over the recipe's own budget (``trainer.max_steps``).

For a recipe (``experiment=<name>``): its network, batch size, crop, class count and numerics
(``trainer.precision`` as ``${cpu_precision:}`` resolves it here, ``module.channels_last``), one
eager and one compiled copy (``nn.Module.compile``, in place, what ``compile=true`` does; the
optimizer stays eager, as there). Compile seconds = the compiled copy's first ``warmup`` steps
less as many of its steady steps; the steady steps of both are interleaved and the least
disturbed taken. Validation recompiles (eval mode, no grad, whole frames): the first compiled
eval forward at the recipe's validation batch and size less a steady one is added to the cost.
Other validation shapes (a last smaller batch, other image sizes) recompile again and are not
counted, nor is the validation forwards' own saving. Compiling starts from an empty Inductor
cache (a first run; a later run of the same recipe reuses its cached kernels).
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time

import torch
from hydra.utils import instantiate

from _helpers import interleave, least_disturbed
from train_numerics import NUM_CLASSES, Stepper, example_batch


def _val_size(cfg) -> tuple[int, int]:  # noqa: ANN001
    """The recipe's largest validation image: CamVid's 360x480 frames, else the synthetic
    generator's largest side, else the crop."""
    dataset = cfg.data.dataset
    if "CamVid" in str(dataset.get("_target_", "")):
        return (360, 480)
    side = dataset.get("max_size") or cfg.data.crop_size
    return (int(side), int(side))


def _recipe(experiment: str, overrides: list[str]) -> dict[str, object]:
    from segkit.cli.configs import compose_config

    given = [f"experiment={experiment}", "backbone.weights=null", *overrides]
    cfg = compose_config("train", given)
    if cfg.data.num_classes is None:  # taken from the dataset at run time: the model needs one
        cfg = compose_config("train", [*given, f"data.num_classes={NUM_CLASSES}"])
    return {
        "experiment": experiment,
        "overrides": overrides,
        "model": cfg.model,
        "classes": int(cfg.data.num_classes),
        "batch": int(cfg.data.batch_size),
        "crop": int(cfg.data.crop_size),
        "val_batch": int(cfg.data.val_batch_size),
        "val_size": _val_size(cfg),
        "bf16": str(cfg.trainer.precision).startswith("bf16"),
        "channels_last": bool(cfg.module.channels_last),
        "max_steps": int(cfg.trainer.max_steps),
    }


def _eval_forward(stepper: Stepper, x: torch.Tensor) -> float:
    stepper.model.eval()
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=stepper.bf16):
        stepper.model(x)
    seconds = time.perf_counter() - start
    stepper.model.train()
    return seconds


def measure(
    experiment: str, overrides: list[str], steps: int, warmup: int, backend: str = "inductor"
) -> dict[str, object]:
    """One recipe: eager and compiled step seconds, compile seconds, break-even, the verdict."""
    r = _recipe(experiment, overrides)
    torch.manual_seed(0)
    model = instantiate(r["model"])
    batch = example_batch("segkit", r["batch"], (r["crop"], r["crop"]), r["classes"])
    numerics = {"bf16": r["bf16"], "channels_last": r["channels_last"]}
    eager = Stepper(model, batch, **numerics)
    compiled = Stepper(copy.deepcopy(model), batch, **numerics, compile_backend=backend)
    for _ in range(warmup):
        eager.step()
    first = [compiled.step() for _ in range(max(1, warmup))]
    times = interleave({"eager": eager.step, "compiled": compiled.step}, steps)
    e, c = least_disturbed(times["eager"]), least_disturbed(times["compiled"])
    compile_s = sum(first) - len(first) * c["best"]
    fmt = torch.channels_last if r["channels_last"] else torch.contiguous_format
    x_val = example_batch("segkit", r["val_batch"], r["val_size"], r["classes"])[0]
    x_val = x_val.contiguous(memory_format=fmt)
    val_first = _eval_forward(compiled, x_val)
    val_c = min(_eval_forward(compiled, x_val) for _ in range(2))
    val_e = min(_eval_forward(eager, x_val) for _ in range(2))
    saving = e["best"] - c["best"]
    cost = compile_s + (val_first - val_c)
    net = saving * r["max_steps"] - cost
    return {
        **{k: v for k, v in r.items() if k != "model"},
        "backend": backend,
        "eager_step_seconds": e,
        "compiled_step_seconds": c,
        "first_compiled_steps_seconds": first,
        "compile_seconds": compile_s,
        "val_compile_seconds": val_first - val_c,
        "val_forward_seconds": {"eager": val_e, "compiled": val_c},
        "saving_per_step_seconds": saving,
        "break_even_steps": cost / saving if saving > 0 else None,
        "net_seconds_over_budget": net,
        "pays_off": net > 0,
    }


def run(
    recipes: list[str], overrides: list[str], steps: int, warmup: int, backend: str = "inductor"
) -> list[dict[str, object]]:
    """Every recipe in turn, each from a reset dynamo state and (Inductor) an empty cache."""
    import torch._dynamo

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in recipes:
            torch._dynamo.reset()
            cache = contextlib.nullcontext()
            if backend == "inductor":
                from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

                cache = temporary_cache_dir(f"{tmp}/{experiment.replace('/', '_')}")
            with cache:
                results.append(measure(experiment, overrides, steps, warmup, backend))
    return results


__all__ = ["measure", "run"]
