"""The pipeline report: ``report.json``, ``report.md`` and PNG plots of the curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STAGE_LABELS = {"base": "base model", "cold_start": "cold start (SFT on distilled CoT)",
                "rejection_sampling": "rejection sampling (SFT on own correct CoT)", "grpo": "GRPO"}  # fmt: skip


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def render_markdown(report: dict[str, Any]) -> str:
    data = report["data"]
    lines = [
        f"# unireward pipeline report: {report['recipe']}",
        "",
        f"Data: **{data}**{' (generated colour/shape task, not a benchmark)' if data == 'synthetic' else ''}; "
        f"held-out split: `{report['test_file_name']}` ({report.get('test_pairs', '?')} pairs, no ties); "
        f"model: {report['model']}; every pair judged in both candidate orders; accuracy = the verdict equals the "
        "label (lenient parse, unparsed counts as wrong), the mean of the two orders; format validity = strict format "
        "(one think block, one answer block with an allowed verdict, nothing else); first slot = share of verdicts "
        "naming the candidate shown first (0.5 = no slot preference); consistency = share of pairs whose verdict names "
        "the same candidate in both orders.",
        "",
    ]
    tasks = sorted({t for s in report["stages"] for t in s.get("per_task", {})})
    lines.append("| stage | accuracy % | forward % | reverse % | first slot % | consistency % | format validity % | " + " | ".join(tasks) + " |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(tasks))
    for s in report["stages"]:
        per = " | ".join(_pct(s["per_task"].get(t)) for t in tasks)
        pos = s.get("position") or {}
        cells = [_pct(pos.get(k)) for k in ("accuracy_forward", "accuracy_reverse", "first_slot_rate", "consistency")]
        lines.append(f"| {STAGE_LABELS.get(s['name'], s['name'])} | {_pct(s['accuracy'])} | {' | '.join(cells)} | "
                     f"{_pct(s['format_validity'])} | {per} |")  # fmt: skip
    gains = report.get("gains", {})
    if gains:
        lines += ["", "Gains (accuracy points): " + ", ".join(f"{k} {v:+.1f}" for k, v in gains.items())]
    for key, title in (("distill", "Distillation"), ("sample", "Rejection sampling"), ("grpo", "GRPO")):
        if report.get(key):
            lines += ["", f"## {title}", "", "```json", json.dumps(report[key], indent=2, default=str), "```"]
    if report.get("plots"):
        lines += ["", "## Curves", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in report["plots"]]
    return "\n".join(lines) + "\n"


def render_plots(report: dict[str, Any], curves: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    stages = report["stages"]
    if stages:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        xs = range(len(stages))
        ax.plot(xs, [100 * (s["accuracy"] or 0) for s in stages], "o-", label="accuracy")
        ax.plot(xs, [100 * (s["format_validity"] or 0) for s in stages], "s--", label="format validity")
        first = [(s.get("position") or {}).get("first_slot_rate") for s in stages]
        ax.plot(xs, [100 * (f if f is not None else float("nan")) for f in first], "^-", color="black", label="first-slot rate")
        ax.axhline(50, color="grey", lw=0.6, ls="--")
        for t in sorted({t for s in stages for t in s["per_task"]}):
            ax.plot(xs, [100 * s["per_task"].get(t, 0) for s in stages], ":", alpha=0.7, label=t)
        ax.set_xticks(list(xs), [s["name"] for s in stages])
        ax.set_ylabel("% of held-out pairs")
        ax.set_ylim(0, 102)
        ax.set_title(f"held-out accuracy (both orders) and first-slot rate by stage ({report['data']} data)", fontsize=9)
        ax.legend(fontsize=7)
        paths.append(_save(plt, fig, out / "accuracy_by_stage.png"))
    loss = {k: v for k, v in curves.items() if k.endswith("loss") and v}
    if loss:
        paths.append(_curves_png(plt, loss, out / "sft_loss.png", "step", "training loss", "SFT loss", 8))
    grpo = {k.split(":", 1)[1]: v for k, v in curves.items() if k.startswith("grpo:") and v}
    if grpo:
        title = "GRPO rewards (mean over the step's completions)"
        paths.append(_curves_png(plt, grpo, out / "grpo_rewards.png", "GRPO step", None, title, 7))
    return paths


def _save(plt: Any, fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _curves_png(
    plt: Any, curves: dict[str, list[Any]], path: Path, xlabel: str, ylabel: str | None, title: str, fontsize: int
) -> str:
    """One line per named curve of ``(step, value)`` points."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, pts in curves.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=fontsize)
    return _save(plt, fig, path)


def write_pipeline_report(pipe: Any) -> dict[str, Any]:
    recipe = pipe.recipe
    out = pipe.lay.root
    stages = []
    for marker in ("eval_base", "eval_cold_start", "eval_rejection_sampling", "eval_grpo"):
        info = pipe.done(marker)
        if info:
            stages.append({k: info.get(k) for k in ("name", "accuracy", "format_validity", "per_task", "n", "judgments", "position",
                                                    "per_task_position", "seconds")})  # fmt: skip
    by = {s["name"]: s["accuracy"] for s in stages}
    gains = {}
    if "grpo" in by and "cold_start" in by:
        gains["GRPO vs cold start"] = 100 * (by["grpo"] - by["cold_start"])
    if "grpo" in by and "rejection_sampling" in by:
        gains["GRPO's own (vs rejection sampling)"] = 100 * (by["grpo"] - by["rejection_sampling"])
    if "cold_start" in by and "base" in by:
        gains["cold start vs base"] = 100 * (by["cold_start"] - by["base"])
    curves: dict[str, Any] = {}
    for key in ("cold_start", "rs_sft"):
        info = pipe.done(key)
        if info:
            curves[f"{key} loss"] = info.get("loss", [])
    grpo = pipe.done("grpo")
    if grpo and grpo.get("curves"):
        for k, v in grpo["curves"].items():
            if k != "loss":
                curves[f"grpo:{k}"] = v
    prep = pipe.done("prepare") or {}
    timings = {m.stem: json.loads(m.read_text()).get("seconds") for m in sorted(pipe.lay.stages.glob("*.json"))}
    report: dict[str, Any] = {
        "recipe": recipe.name,
        "data": "synthetic" if recipe.data.synthetic else "real",
        "test_file_name": Path(pipe.cfg["data"]["test"]).name,
        "test_pairs": stages[0]["n"] if stages else None,
        "model": json.dumps(prep.get("model", {"base": recipe.model.base})),
        "template_family": recipe.template_family or "unifiedreward-think",
        "stages": stages,
        "gains": gains,
        "distill": (pipe.done("distill") or {}).get("report"),
        "sample": {k: v for k, v in ((pipe.done("sample") or {}).get("report") or {}).items() if k != "config"} or None,
        "grpo": {k: v for k, v in (grpo or {}).items() if k not in ("curves", "stage")} or None,
        "order_balance": recipe.order_balance,
        "timings_seconds": timings,
    }
    report["plots"] = render_plots(report, curves, out)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(render_markdown(report))
    return report
