"""Markdown of a ``bench_train.py --numerics`` result (its JSON): what docs/benchmarks.md takes.
A section the run did not measure says so; a smoke run (settings below the documented ones) is
headed as such, so its figures cannot pass for results; targets are checked, never assumed."""

from __future__ import annotations

from typing import Any

#: The peaks the CPU-speed issue quotes (2026-12-07, 4096^2 matmul, 2 threads, quiet, on the AMD
#: EPYC with AVX512-BF16 but no AMX the issue was written on), for comparison: the peak that
#: counts is the one measured in the same run.
REFERENCE_PEAKS = {"fp32": 139.0, "bf16": 353.0}
TARGETS = {"train_per_mac": 1.6, "eval": 1.5, "loader": 2.0}
NOT_MEASURED = "not measured in this run"
#: Profile categories whose time is bound by memory traffic rather than arithmetic.
MEMORY_BOUND = ("conv depthwise", "batch norm", "upsample", "activation", "optimizer")


def _f(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}f}"


def _spread(t: dict[str, Any]) -> str:
    return f"{100 * t['spread']:.0f} % ({len(t['runs'])} runs)"


def _verdict(value: float, target: float, res: dict[str, Any]) -> str:
    if res.get("smoke"):
        return f"{value:.2f}× (target ≥ {target}×: smoke run, no verdict)"
    return f"**{value:.2f}×** (target ≥ {target}×: {'met' if value >= target else 'not met'})"


def header(res: dict[str, Any]) -> list[str]:
    h = res["header"]
    lines = [
        f"- machine: {h['machine']}, {h['logical_cores']} logical cores; torch {h['torch']}, "
        f"{h['threads']} threads, Python {h['python']}",
        f"- date: {h['date']}; load average {' '.join(map(str, h['load_start']))} at the start, "
        f"{' '.join(map(str, h.get('load_end', ['?'])))} at the end",
        f"- command: `{h['command']}`",
    ]
    for section, error in (res.get("errors") or {}).items():
        lines.append(f"- **section {section} failed**: `{error}`")
    if res.get("smoke"):
        lines.insert(0, "**SMOKE RUN (settings below the documented ones): checks the code, "
                        "the figures are not results.**\n")  # fmt: skip
    elif not quiet(h):
        lines.append("- **not a quiet machine** (other work beside the benchmark: a 1-min load "
                     "average above 1 before it, or above its own threads + 1 at its end): only "
                     "the side-by-side ratios mean anything")  # fmt: skip
    return lines


def quiet(h: dict[str, Any]) -> bool:
    """Whether nothing else ran: the 1-min load average at most 1 before the benchmark starts,
    and at its end at most 1 above the benchmark's own busy threads (which the load counts)."""
    own = int(h.get("threads") or 1)
    end = h.get("load_end") or [0.0]
    return h["load_start"][0] <= 1.0 and end[0] - own <= 1.0


def train(res: dict[str, Any]) -> list[str]:
    t = res.get("train")
    if not t:
        return [f"Training step: {NOT_MEASURED}."]
    peaks = t["peaks_gflop_s"]
    lines = [
        f"Matmul peak in this run ({t['matmul_n']}², least disturbed of the interleaved calls): "
        f"fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s (the issue's figures, "
        "2026-12-07 on an AMD EPYC without AMX: "
        f"fp32 {REFERENCE_PEAKS['fp32']:.0f}, bf16 {REFERENCE_PEAKS['bf16']:.0f}).",
        "",
        "| model | numerics | size | images/s | spread | fwd GMAC/img | step GMAC/img "
        "| GMAC/s (images/s × fwd GMAC) | achieved GFLOP/s | % of its matmul peak |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in t["rows"]:
        lines.append(
            f"| {r['model']} | {r['numerics']} | {r['size']} | {_f(r['images_per_s'])} | "
            f"{_spread(r['step_seconds'])} | {_f(r['fwd_gmac_per_image'])} | "
            f"{_f(r['step_gmac_per_image'])} | {_f(r['gmac_per_s'], 1)} | "
            f"{r['achieved_gflop_s']:.0f} | {100 * r['share_of_peak']:.0f} % |"
        )
    lines.append("")
    for size in dict.fromkeys(r["size"] for r in t["rows"]):
        row = {(r["model"].split()[0], r["numerics"]): r for r in t["rows"]
               if r["size"] == size and r["model"] != "segkit FCN-8s"}  # fmt: skip
        ours, smp32 = row.get(("segkit", "bf16 + channels_last")), row.get(("smp", "fp32"))
        smp16 = row.get(("smp", "bf16 + channels_last"))
        if not (ours and smp32):
            continue
        ours32 = row.get(("segkit", "fp32"))
        lines.append(
            f"- {size}: segkit recipe / segkit fp32: "
            + (f"{_f(ours['images_per_s'] / ours32['images_per_s'])}×; " if ours32 else "—; ")
            + f"segkit recipe / smp fp32 eager: {_f(ours['images_per_s'] / smp32['images_per_s'])}× "
            f"images/s; per MAC (GMAC/s) {_verdict(ours['gmac_per_s'] / smp32['gmac_per_s'], TARGETS['train_per_mac'], res)}"
            + (f"; smp under the same bf16 + channels_last: {_f(smp16['images_per_s'] / smp32['images_per_s'])}× its fp32 "
               f"(the hardware), segkit recipe / smp bf16 per MAC {_f(ours['gmac_per_s'] / smp16['gmac_per_s'])}×"
               if smp16 else "")
        )  # fmt: skip
    return lines


def profile(res: dict[str, Any]) -> list[str]:
    p = res.get("profile")
    if not p:
        return [f"Per-category time of one training step: {NOT_MEASURED}."]
    cats = list(p["variants"][0]["seconds"])
    heads = [f"{v['model']}, {v['numerics']}" for v in p["variants"]]
    lines = [
        f"One profiled step at {p['size']}, batch {p['batch']} (torch.profiler, self CPU time; "
        "share of the profiled step, and for the conv kinds the GFLOP/s they achieve):",
        "",
        "| category | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for cat in cats:
        cells = []
        for v in p["variants"]:
            s, share = v["seconds"][cat], v["seconds"][cat] / v["profiled_total"]
            rate = v["gflop_s_by_kind"].get(cat)
            cells.append(f"{1e3 * s:.0f} ms ({100 * share:.0f} %)"
                         + (f", {rate:.{0 if rate >= 10 else 1}f} GFLOP/s" if rate else ""))  # fmt: skip
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    peaks = (res.get("train") or {}).get("peaks_gflop_s", {})
    lines.append("")
    for v in p["variants"]:
        bound = sum(v["seconds"][c] for c in MEMORY_BOUND) / v["profiled_total"]
        dense = v["gflop_s_by_kind"].get("conv dense")
        peak = peaks.get("bf16" if v["numerics"].startswith("bf16") else "fp32")
        at_peak = f" = {100 * dense / peak:.0f} % of the matmul peak" if dense and peak else ""
        lines.append(f"- {v['model']}, {v['numerics']}: {100 * bound:.0f} % of the step in "
                     f"memory-bound work ({', '.join(MEMORY_BOUND)}); dense convs at "
                     f"{dense or 0:.0f} GFLOP/s{at_peak}")  # fmt: skip
    return lines


def evaluation(res: dict[str, Any]) -> list[str]:
    e = res.get("eval")
    if not e:
        return [f"Evaluation backends: {NOT_MEASURED}."]
    lines = [
        f"segkit DeepLabv3+ forward through `infer`, batch {e['rows'][0]['batch']}; onnxruntime "
        f"export ({e['onnx_exporter']}) took {e['onnx_export_seconds']:.0f} s once.",
        "",
        "| backend | size | images/s | spread | × torch fp32 |",
        "|---|---|---:|---:|---:|",
    ]
    for r in e["rows"]:
        lines.append(f"| {r['backend']} | {r['size']} | {_f(r['images_per_s'])} | "
                     f"{_spread(r['batch_seconds'])} | {_f(r['vs_torch_fp32'])} |")  # fmt: skip
    for size in dict.fromkeys(r["size"] for r in e["rows"]):
        best = max((r for r in e["rows"] if r["size"] == size), key=lambda r: r["vs_torch_fp32"])
        lines.append(f"- {size}: fastest {best['backend']}, "
                     f"{_verdict(best['vs_torch_fp32'], TARGETS['eval'], res)}")  # fmt: skip
    return lines


def compile_cost(res: dict[str, Any]) -> list[str]:
    c = res.get("compile")
    if not c:
        return [f"torch.compile: {NOT_MEASURED}."]
    lines = [
        "| recipe | batch × crop | eager s/step | compiled s/step | compile s (train + val) "
        "| saved s/step | break-even steps | budget (steps) | net over the budget | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in c:
        be = "never" if r["break_even_steps"] is None else f"{r['break_even_steps']:.0f}"
        lines.append(
            f"| {r['experiment']} ({r['backend']}) | {r['batch']} × {r['crop']} | "
            f"{r['eager_step_seconds']['best']:.3f} | {r['compiled_step_seconds']['best']:.3f} | "
            f"{r['compile_seconds']:.0f} + {r['val_compile_seconds']:.0f} | "
            f"{r['saving_per_step_seconds']:.3f} | {be} | {r['max_steps']} | "
            f"{r['net_seconds_over_budget']:+.0f} s | "
            f"{_compile_verdict(r, res)} |"
        )
    return lines


def _compile_verdict(r: dict[str, Any], res: dict[str, Any]) -> str:
    if res.get("smoke"):
        return "smoke run, no verdict"
    return "pays off: on by default" if r["pays_off"] else "does not pay off: keep off"


def _model_reference(res: dict[str, Any]) -> tuple[float, str] | None:
    """Images/s of the faster training step the loader must feed, and what it is."""
    for r in res.get("compile") or []:
        if r["experiment"] == "camvid/deeplabv3plus":
            best = min(r["eager_step_seconds"]["best"], r["compiled_step_seconds"]["best"])
            return r["batch"] / best, f"CamVid recipe's faster step (crop {r['crop']})"
    rows = [r for r in (res.get("train") or {}).get("rows", [])
            if r["model"] == "segkit DeepLabv3+" and r["numerics"] == "bf16 + channels_last"]  # fmt: skip
    if rows:
        r = max(rows, key=lambda r: r["images_per_s"])
        return r["images_per_s"], f"segkit recipe at {r['size']} (no compile section)"
    return None


def loader(res: dict[str, Any]) -> list[str]:
    d = res.get("loader")
    if not d:
        return [f"Input pipeline: {NOT_MEASURED}."]
    ref = _model_reference(res)
    lines = [
        f"Training loader alone, protocol transforms {d['transform']}, default workers = "
        f"{d['workers_default']}:",
        "",
        "| source | loader | images/s | spread | × the model's images/s |",
        "|---|---|---:|---:|---:|",
    ]
    for r in d["rows"]:
        ratio = _f(r["images_per_s"] / ref[0]) if ref else "—"
        lines.append(f"| {r['source']} | {r['loader']} | {_f(r['images_per_s'], 1)} | "
                     f"{_spread(r['pass_seconds'])} | {ratio} |")  # fmt: skip
    if ref:
        lines.append(f"- model reference: {ref[1]}, {ref[0]:.2f} images/s")
        for r in d["rows"]:
            if "default" in r["loader"]:
                lines.append(
                    f"- {r['source']}: {_verdict(r['images_per_s'] / ref[0], TARGETS['loader'], res)}"
                )
    return lines


def rss(res: dict[str, Any]) -> list[str]:
    rows = res.get("rss")
    if not rows:
        return [f"Peak RSS of one training step: {NOT_MEASURED}."]
    lines = [
        f"Peak RSS of one training step, batch {rows[0]['batch']}, {rows[0]['size']} (fresh "
        "process each):",
        "",
        "| model | numerics | RSS before (MiB) | peak (MiB) | the step's growth (MiB) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['numerics']} | {r['before_mib']:.0f} | "
                     f"{r['peak_mib']:.0f} | {r['growth_mib']:.0f} |")  # fmt: skip
    return lines


def render(res: dict[str, Any]) -> str:
    parts = [["# CPU training and evaluation: segkit's recipe vs float32 vs smp", "", *header(res)]]
    for title, fn in (("Training step", train), ("Where the step's time goes", profile),
                      ("Evaluation backends", evaluation), ("torch.compile", compile_cost),
                      ("Input pipeline", loader), ("Memory", rss)):  # fmt: skip
        parts.append([f"## {title}", "", *fn(res)])
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


__all__ = ["NOT_MEASURED", "REFERENCE_PEAKS", "TARGETS", "render"]
