"""Imports run down the pipeline (docs/architecture.md): every ``import unireward...`` in the
package, at module level or inside a function, goes from a layer to a lower one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "unireward"

#: layer of each top-level package or module; an import may only go to a lower layer
LAYER = {
    "media": 0, "runs": 0, "metrics": 0, "_deepspeed_log": 0, "cli_args": 0,
    "protocol": 1,
    "data": 2,
    "models": 3, "request": 3, "rewards": 3,
    "judge": 4,
    "train": 5,
    "eval": 6,
    "serve": 7, "app": 7, "demo": 7,
    "cli": 8,
    # old import paths, kept as re-export shims
    "rows": 0, "manifest": 0, "integrations": 3, "remote_reward": 3,
}  # fmt: skip

#: edges between packages of one layer, and the shims' edges to their new homes
SAME_LAYER = {("app", "demo"), ("rows", "runs"), ("manifest", "runs"), ("integrations", "rewards"),
              ("remote_reward", "rewards")}  # fmt: skip

#: the server's wire schema, which its HTTP client (rewards.remote) shares: it needs only the errors
WIRE = {"unireward.serve.protocol", "unireward.serve.errors"}

#: upward edges that remain, by file (docs/architecture.md says why); a new one fails the test
KNOWN_UPWARD = {
    ("data/export.py", "request"),  # exporters build prompts through JudgeRequest, which reads data.schema
    ("train/pipeline.py", "eval"),  # the pipeline evaluates after every stage
    ("train/pipeline.py", "demo"),  # the pipeline takes the demo's synthetic data and teacher itself
}


def _imports(path: Path) -> list[str]:
    """Every unireward module a file imports (absolute imports; the package uses no relative ones)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("unireward.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("unireward."):
            assert node.level == 0, f"{path}: relative import"
            out.append(node.module)
    return out


def _edges() -> list[tuple[str, str, str]]:
    """(file, its package, imported module) for every cross-package import."""
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        unit = rel.split("/")[0].removesuffix(".py")
        if unit == "__init__":  # the package facade re-exports from the bottom layers
            continue
        for module in _imports(path):
            if module.split(".")[1] != unit:
                edges.append((rel, unit, module))
    return edges


def _upward(edges: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
    bad = set()
    for rel, unit, module in edges:
        target = module.split(".")[1]
        if target not in LAYER or unit not in LAYER:
            bad.add((rel, f"{target} (not in LAYER: add it to the table and docs/architecture.md)"))
        elif module in WIRE and LAYER[unit] >= LAYER["protocol"]:
            continue
        elif LAYER[target] >= LAYER[unit] and (unit, target) not in SAME_LAYER:
            bad.add((rel, target))
    return bad


def test_imports_only_run_down_the_pipeline() -> None:
    edges = _edges()
    assert len(edges) > 100  # the walk saw the package
    new = _upward(edges) - KNOWN_UPWARD
    assert not new, f"imports that run up the pipeline (see docs/architecture.md): {sorted(new)}"


def test_the_wire_schema_stays_light() -> None:
    """What the client shares with the server imports nothing of the server beyond its errors."""
    for module in WIRE:
        path = SRC / (module.removeprefix("unireward.").replace(".", "/") + ".py")
        if path.exists():
            assert {m for m in _imports(path) if m.startswith("unireward.serve")} <= WIRE, path


def test_the_checker_catches_an_upward_import() -> None:
    edges = [("protocol/parser.py", "protocol", "unireward.judge.judge"), ("judge/judge.py", "judge", "unireward.protocol")]
    assert _upward(edges) == {("protocol/parser.py", "judge")}
