"""Tasks and prompt templates: the official files ship unchanged, render media first, keep user text intact."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from unireward.protocol import (
    Mode,
    Task,
    answer_label,
    get_family,
    label_to_winner,
    list_families,
    render_messages,
)
from unireward.protocol.tasks import THINK_TASKS
from unireward.protocol.templates import register_family, render_text

OFFICIAL = get_family("unifiedreward-think")
REPO = Path(__file__).resolve().parents[1]


def test_tasks() -> None:
    assert [t.value for t in Task] == ["image_generation", "video_generation", "image_understanding", "video_understanding",
                                       "image_editing"]  # fmt: skip
    assert Task.parse(" Image-Generation ") is Task.IMAGE_GENERATION
    with pytest.raises(ValueError, match="expected one of"):
        Task.parse("audio")
    assert [t.is_video for t in Task] == [False, True, False, True, False]
    assert [t.is_generation for t in Task] == [True, True, False, False, True]
    assert [t.uses_reference for t in Task] == [False, False, True, True, True]
    for t in Task:
        for w in (1, 2):
            assert label_to_winner(t, answer_label(t, w)) == w
    with pytest.raises(ValueError):
        answer_label("image_generation", 3)


def test_shipped_official_templates_are_byte_identical(shared_data: Path) -> None:
    reference = shared_data.parent / "reference" / "unifiedreward-think-prompts"
    for task in THINK_TASKS:
        shipped = OFFICIAL.directory / f"{task.value}.txt"
        assert shipped.read_bytes() == (reference / f"{task.value}.txt").read_bytes(), task
    assert (OFFICIAL.directory / "LICENSE").read_bytes() == (reference / "LICENSE").read_bytes()
    assert "MIT" in (OFFICIAL.directory / "LICENSE").read_text()


def test_registry() -> None:
    assert {"unifiedreward-think", "unireward-pointwise"} <= set(list_families())
    assert get_family().name == "unifiedreward-think" and get_family().mode is Mode.PAIRWISE
    assert get_family(mode="pointwise").name == "unireward-pointwise"
    with pytest.raises(KeyError, match="unknown template family"):
        get_family("nope")


CAPTION = "a {prompt} sign saying {R1} and {{x}} {Query} — ünïcødé 🐈"
QUESTION = "What does the sign say: '{R2}'?"
ANSWERS = ("It says {R1}.", "It says {prompt} }{")


@pytest.mark.parametrize("task", list(THINK_TASKS))
def test_official_templates_render_media_first_with_user_text_intact(task: Task) -> None:
    if task.is_generation:
        media, text_in, answers = ["one", "two"], CAPTION, ()
    else:
        media, text_in, answers = ["ref"], QUESTION, ANSWERS
    msgs = render_messages(task, text_in, media, answers)
    assert len(msgs) == 1 and msgs[0]["role"] == "user"  # one user turn, no system prompt
    parts = msgs[0]["content"]
    kind = "video" if task.is_video else "image"
    assert [p["type"] for p in parts] == [kind] * len(media) + ["text"]
    assert [p[kind] for p in parts[:-1]] == media
    text = parts[-1]["text"]
    template = OFFICIAL.text(task)
    # everything outside the placeholders is the official text, and user text is inserted verbatim
    values = {"prompt": CAPTION, "Query": QUESTION, "R1": ANSWERS[0], "R2": ANSWERS[1]}
    expected = template
    for key in values:  # placeholders to sentinels first, so inserted text is never substituted again
        expected = expected.replace("{" + key + "}", "\0" + key + "\0")
    for key, value in values.items():
        expected = expected.replace("\0" + key + "\0", value)
    assert text == expected
    assert (CAPTION if task.is_generation else QUESTION) in text


@pytest.mark.parametrize("task", list(THINK_TASKS))
def test_pointwise_templates(task: Task) -> None:
    media = ["clip"]
    answers = () if task.is_generation else ("Three cats.",)
    text_in = CAPTION if task.is_generation else QUESTION
    msgs = render_messages(task, text_in, media, answers, mode="pointwise")
    text = msgs[0]["content"][-1]["text"]
    assert text_in in text and "Overall score: X/10" in text and "<think>" in text
    assert not any(k in text.replace(text_in, "") for k in ("{prompt}", "{Query}", "{R1}", "{R2}"))
    if not task.is_generation:
        assert "Answer: [Three cats.]" in text


def test_video_as_frames() -> None:
    msgs = render_messages("video_generation", "cap", [["a0", "a1", "a2"], ["b0", "b1", "b2"]], video_as="frames")
    parts = msgs[0]["content"]
    assert [p["type"] for p in parts] == ["image"] * 6 + ["text"]
    assert [p["image"] for p in parts[:6]] == ["a0", "a1", "a2", "b0", "b1", "b2"]  # first half is Video 1


def test_wrong_number_of_media_or_answers_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 2 candidate"):
        render_messages("image_generation", "cap", ["only-one"])
    with pytest.raises(ValueError, match="needs 1 candidate"):
        render_messages("image_generation", "cap", ["a", "b"], mode="pointwise")
    with pytest.raises(ValueError, match="needs 1 reference"):
        render_messages("image_understanding", "q", [], ("a", "b"))
    with pytest.raises(ValueError, match="needs 2 answer"):
        render_messages("video_understanding", "q", ["v"], ("a",))
    with pytest.raises(ValueError, match="needs 1 answer"):
        render_text("image_understanding", "q", ("a", "b"), mode="pointwise")


def test_custom_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from unireward.protocol import templates

    monkeypatch.setattr(templates, "_REGISTRY", dict(templates._REGISTRY))  # leave no family behind
    (tmp_path / "image_generation.txt").write_text("Judge {prompt}. Output <answer>Image 1 is better</answer>.")
    register_family("custom-test", tmp_path, "pairwise")
    # a family covering only some tasks does not break building a tiny model's tokenizer corpus
    from unireward.models.tokenizer import _corpus

    assert "Judge {prompt}. Output <answer>Image 1 is better</answer>." in _corpus([])
    msgs = render_messages("image_generation", "a {R1}", ["a", "b"], family="custom-test")
    assert msgs[0]["content"][-1]["text"] == "Judge a {R1}. Output <answer>Image 1 is better</answer>."
    with pytest.raises(FileNotFoundError, match="custom-test"):
        render_messages("video_generation", "x", ["a", "b"], family="custom-test")


def test_templates_and_licence_ship_in_the_wheel(tmp_path: Path) -> None:
    """package-data: a wheel built from the source tree carries every template, the LICENSE and NOTICE."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copy(REPO / "README.md", tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", "dist"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("unireward-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    base = "unireward/protocol/templates/"
    for task in THINK_TASKS:
        assert f"{base}unifiedreward_think/{task.value}.txt" in names
        assert f"{base}unireward_pointwise/{task.value}.txt" in names
    for folder in ("unifiedreward_think", "unifiedreward_2_0", "unifiedreward_edit", "unifiedreward_flex"):
        assert f"{base}{folder}/LICENSE" in names and f"{base}{folder}/NOTICE.md" in names
    from unireward.protocol.templates import _REGISTRY

    shipped = {p.relative_to(REPO / "src").as_posix() for v in _REGISTRY.values() for f in v.values()
               for p in f.directory.glob("*.txt")}  # fmt: skip
    assert shipped <= names  # every registered family's prompts, the subfolders of 2.0 and Edit too
