"""Start-up of the ``unireward`` command: building its parser imports no heavy library (each command
imports what it needs when it runs), and ``--version`` prints the installed version."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "deepspeed", "fastapi", "uvicorn",
         "gradio", "av", "openai", "ray")  # fmt: skip


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_the_parser_imports_no_heavy_library() -> None:
    assert _loaded_after("import unireward.cli; unireward.cli.build_parser()") == []


def test_package_imports_stay_light() -> None:
    """``unireward.judge`` and ``unireward.serve`` load their backends and app on first use."""
    assert _loaded_after("import unireward, unireward.judge, unireward.serve, unireward.rewards") == []
    assert "torch" in _loaded_after("from unireward.judge import TransformersBackend")  # the probe sees it


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from unireward.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"unireward {metadata.version('unireward')}"


def test_lazy_judge_exports_match() -> None:
    import unireward.judge as judge

    assert sorted(judge.__all__) == sorted(judge._WHERE)
    for name in judge.__all__:
        assert getattr(judge, name) is getattr(__import__(judge._WHERE[name], fromlist=[name]), name)
    with pytest.raises(AttributeError):
        judge.NoSuchThing  # noqa: B018
