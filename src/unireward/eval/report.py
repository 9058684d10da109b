"""Reports: ``report.json`` (everything), ``report.md`` (a labelled table), ``report.png`` (bars).

Every number carries its labels: benchmark, split, data (real or synthetic), judge, protocol,
tie convention and category mapping; a number read without them is easy to misquote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unireward.rows import replace_json, replace_text

_PERCENT_KEYS = ("overall", "macro", "accuracy", "tau", "diff", "accuracy_without_ties", "accuracy_with_ties", "mean_of_tasks",
                 "accuracy_strict", "accuracy_tie_aware", "pairwise_accuracy", "ranking_exact", "group_accuracy",
                 "acc_plus")


def headline(results: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    """Flatten the percent-valued numbers of a result tree into ``(name, value)`` rows.

    >>> headline({"official": {"overall": 50.0, "categories": {"general": {"n": 3, "accuracy": 40.0}}}, "n": 3})
    [('official/overall', 50.0), ('official/general', 40.0)]
    """
    rows: list[tuple[str, float]] = []
    for key, value in results.items():
        if isinstance(value, dict):
            sub = prefix if key == "categories" else f"{prefix}{key}/"
            rows += headline(value, sub)
        elif key in _PERCENT_KEYS and isinstance(value, (int, float)):
            rows.append((prefix.rstrip("/") if key == "accuracy" and prefix else f"{prefix}{key}", float(value)))
    return rows


def errors_line(report: dict[str, Any]) -> str:
    """``N judgments (M pairs)`` for the failed part of a run.

    >>> errors_line({"errors": {"judgments": 2, "pairs": 1}})
    '2 (1 pairs)'
    """
    e = report.get("errors") or {}
    return f"{e.get('judgments', 0)} ({e.get('pairs', 0)} pairs)"


_POSITION_COLS = ("accuracy_forward", "accuracy_reverse", "accuracy", "consistency", "first_slot_rate", "label_first_rate")


def _cell(v: Any) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def position_lines(report: dict[str, Any]) -> list[str]:
    """The position table: overall and per category/task (``n/a`` where an order was not shown).

    >>> block = dict.fromkeys(_POSITION_COLS, 50.0)
    >>> position_lines({"labels": {"order": "both"}, "position": block, "position_groups": {}})[4]
    '| all | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 |'
    """
    if not report.get("position"):
        return []
    lines = ["", f"Position (%; order shown: {report['labels']['order']}; ties and unparsed verdicts count as wrong; "
             "consistency = same candidate named in both orders; first_slot_rate = verdicts naming the slot shown first):",
             "| group | " + " | ".join(_POSITION_COLS) + " |", "| --- |" + " ---: |" * len(_POSITION_COLS)]  # fmt: skip
    rows = [("all", report["position"])] + sorted(report.get("position_groups", {}).items())
    return lines + [f"| {name} | " + " | ".join(_cell(b.get(k)) for k in _POSITION_COLS) + " |" for name, b in rows]


def published_lines(benchmark: str) -> list[str]:
    """Published numbers of named judges, marked as not measured here."""
    from unireward.eval.published import published_rows

    rows = published_rows(benchmark)
    if not rows:
        return []
    out = ["", "Published, not measured here (percent):", "| judge | values | source |", "| --- | --- | --- |"]
    for r in rows:
        vals = ", ".join(f"{k} {v:g}" for k, v in r.values.items()) + (f" ({r.note})" if r.note else "")
        out.append(f"| {r.judge} | {vals} | {r.source} |")
    return out


def render_markdown(report: dict[str, Any]) -> str:
    labels = report["labels"]
    lines = [
        f"# {labels['benchmark']} — {labels['judge']}",
        "",
        "| label | value |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in labels.items()],
        f"| pairs / judgments | {report['n_pairs']} / {report['n_judgments']} |",
        f"| failed judgments (pairs left out of every number) | {errors_line(report)} |",
        f"| unparsed answers | {report.get('unparsed_judgments', 0)} ({labels.get('unparsed')}) |",
        "",
        "| metric (%) | value | benchmark | split | data | judge | tie convention | category mapping |",
        "| --- | ---: | --- | --- | --- | --- | --- | --- |",
    ]
    mapping_text = {"official": "official (POVID = hallucination)", "legacy": "legacy (POVID = general)"}
    for name, value in headline(report["results"]):
        mapping = mapping_text.get(name.split("/")[0], labels["category_mapping"])
        lines.append(
            f"| {name} | {value:.2f} | {labels['benchmark']} | {labels['split']} | {labels['data']} | "
            f"{labels['judge']} | {labels['tie_convention']} | {mapping} |"
        )
    lines += position_lines(report)
    lines += published_lines(labels["benchmark"])
    if report.get("skipped", {}).get("records"):
        sk = report["skipped"]
        lines += ["", f"Records not evaluated ({sk['records']}), by reason:", *[f"- {why}: {n}" for why, n in sk["reasons"].items()]]
    if "swap_consistency" in report:
        s = report["swap_consistency"]
        lines += ["", f"Swap consistency: {s['percent']}% ({s['consistent']}/{s['pairs']} pairs agree in both orders)."]
    if report.get("errors", {}).get("bad_records"):
        lines += ["", "Records left out (they do not fit the benchmark's format):", *[f"- {e}" for e in report["errors"]["bad_records"][:20]]]
    if report.get("errors", {}).get("examples"):
        lines += ["", "Failed judgments (rerun the same command to retry them):", *[f"- {e}" for e in report["errors"]["examples"]]]
    return "\n".join(lines) + "\n"


def render_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = headline(report["results"])
    labels = report["labels"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(rows) + 1.5), 3.6))
    ax.bar([r[0] for r in rows], [r[1] for r in rows], color="#4C72B0")
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(f"{labels['benchmark']} ({labels['split']}, {labels['data']} data) — {labels['judge']}", fontsize=9)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for i, (_, v) in enumerate(rows):
        ax.text(i, v + 1, f"{v:.1f}", ha="center", fontsize=7)
    fig.text(0.01, 0.01, f"ties: {labels['tie_convention']}"[:160], fontsize=5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
    replace_json(paths["json"], report)
    replace_text(paths["md"], render_markdown(report))
    render_chart(report, paths["png"])
    return paths
