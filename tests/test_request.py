"""The one judgment request: its rules (errors name the field), its loader (one vision budget shared
per request), its swapped order, and the same messages from the judge, the server and the exporter."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from serve_util import running

from unireward.data.export import ExportConfig, export_pairs
from unireward.data.schema import PreferencePair
from unireward.judge import Judge, JudgeOptions, TransformersBackend
from unireward.judge.backends import Backend
from unireward.media import Frames, MediaError, VisionBudget
from unireward.protocol.tasks import Mode, Task
from unireward.request import (
    JudgeRequest,
    RequestError,
    check_samples,
    group_share,
    load_pair_media,
    media_inputs,
    pair_messages,
    validate_group,
)
from unireward.serve import ServerLimits, create_app

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 160, 30)}


class Recording(Backend):
    """Passes requests to the real backend and keeps the messages it was given."""

    def __init__(self, inner: Backend):
        self.inner, self.budget, self.name = inner, inner.budget, inner.name
        self.messages: list[list[dict[str, Any]]] = []

    def generate(self, messages_list: list, params: Any) -> list:
        self.messages.extend(messages_list)
        return self.inner.generate(messages_list, params)


def _write_video(path: Path, colour: str, frames: int = 8, size: int = 512) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_image(Image.new("RGB", (size, size), COLOURS[colour]))):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """512x512 PNGs and JPEGs of one colour each, and 8-frame 512x512 mp4s, under one media root."""
    root = tmp_path_factory.mktemp("request-media")
    for name, rgb in COLOURS.items():
        Image.new("RGB", (512, 512), rgb).save(root / f"{name}.png")
        Image.new("RGB", (512, 512), rgb).save(root / f"{name}.jpg", quality=95)
    _write_video(root / "red.mp4", "red")
    _write_video(root / "blue.mp4", "blue")
    return root


def _colour(img: Image.Image) -> str:
    """The named colour closest to the image's mean."""
    px = img.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    return min(COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], px, strict=True)))  # type: ignore[arg-type]


def _pair(task: str, cands: tuple[str, str], reference: str | None = None) -> PreferencePair:
    return PreferencePair(id="p1", task=task, prompt="a red square on a table", candidates=cands, label=1,
                          reference=reference)  # fmt: skip


# ---------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda: JudgeRequest.from_loose("painting", "x", ["a.png", "b.png"]), "task", "unknown task 'painting'"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a.png"]), "candidates", "exactly two candidates"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a", "b"], mode="pointwise"), "candidates",
         "exactly one candidate"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", "a.png"), "candidates", "must be a list"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a", "b"], mode="triple"), "mode", "pairwise"),
        (lambda: JudgeRequest.from_loose("image_generation", "  ", ["a", "b"]).validate(), "prompt", "caption is empty"),
        (lambda: JudgeRequest.from_loose("image_editing", "", ["a", "b"], "s").validate(), "prompt",
         "instruction is empty"),
        (lambda: JudgeRequest.from_loose("video_understanding", 7, ["a", "b"], "v.mp4").validate(), "prompt",
         "must be a string"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a.png", None]).validate(), "candidates[1]",
         "candidate 2 has no file"),
        (lambda: JudgeRequest.from_loose("image_understanding", "q", [3, "b"], "r.png").validate(), "candidates[0]",
         "answers must be strings: candidate 1 is int"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a", "b"], "r.png").validate(), "reference",
         "takes no reference"),
        (lambda: JudgeRequest.from_loose("image_editing", "x", ["a", "b"]).validate(), "reference",
         "image_editing needs the source image"),
        (lambda: JudgeRequest.from_loose("video_understanding", "q", ["a", "b"], "").validate(), "reference",
         "needs a reference video"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a", "b"], template_family="nope").validate(),
         "template_family", "unknown template family 'nope'"),
        (lambda: JudgeRequest.from_loose("image_editing", "x", ["a", "b"], "s", template_family="unifiedreward-think")
         .validate(), "template_family", "has no prompt for image_editing; it covers image_generation"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a", "b"], template_family="unireward-pointwise")
         .validate(), "template_family", "has no pairwise prompts"),
        (lambda: JudgeRequest.from_loose("image_generation", "x", ["a"], mode="pointwise").swapped(), "mode",
         "nothing to swap"),
        (lambda: validate_group("image_understanding", "q", ["a", "b", 5], "r.png"), "candidates[2]",
         "candidate 3 is int"),
        (lambda: check_samples(4, 0.0), "temperature", "several samples need a temperature above 0"),
    ],
)
def test_each_rule_names_its_field(build: Any, field: str, words: str) -> None:
    with pytest.raises(RequestError) as e:
        build()
    assert e.value.field == field and words in str(e.value), (e.value.field, str(e.value))
    assert isinstance(e.value, ValueError)  # every `except ValueError` site still catches it


def test_a_valid_request_passes_and_an_empty_answer_is_an_answer() -> None:
    r = JudgeRequest.from_loose("image_understanding", "what is it?", ["", "a cat"], "r.png", id="q1").validate()
    assert r.answers == ("", "a cat") and r.media_refs() == ["r.png"] and r.id == "q1" and r.order == "original"
    r = JudgeRequest.from_loose("image_editing", "make it blue", ["a.png"], "s.png", Mode.POINTWISE,
                                template_family="unifiedreward-edit").validate()  # fmt: skip
    assert r.mode is Mode.POINTWISE and r.media_refs() == ["s.png", "a.png"]
    check_samples(4, 0.7)
    check_samples(1, 0.0)


def test_unreadable_files_stay_media_errors_naming_the_file(files: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    for name in ("missing.png", "broken.png"):
        req = JudgeRequest.from_loose("image_generation", "x", [str(files / "red.png"), name])
        with pytest.raises(MediaError) as e:
            req.load(VisionBudget(), tmp_path)
        assert name in str(e.value)


# ---------------------------------------------------------------- loading and the vision budget


def test_media_of_one_request_share_the_budget(files: Path) -> None:
    """With a total cap, two 512x512 candidates get half of it each, an edit's three images a third,
    one pointwise candidate all of it; a video's frames share it the same way."""
    budget = VisionBudget(max_total_pixels=147456)
    pair = JudgeRequest.from_loose("image_generation", "x", ["red.png", "blue.jpg"]).load(budget, files)
    edit = JudgeRequest.from_loose("image_editing", "x", ["red.png", "blue.png"], "green.png").load(budget, files)
    one = JudgeRequest.from_loose("image_generation", "x", ["red.png"], mode="pointwise").load(budget, files)
    assert [m.size for m in pair.media] == [(252, 252)] * 2  # 147456 / 2 = 73728 pixels each, sides of 28
    assert [m.size for m in edit.media] == [(196, 196)] * 3  # the source image takes its share
    assert [m.size for m in one.media] == [(364, 364)]
    for req in (pair, edit, one):
        assert sum(m.width * m.height for m in req.media) <= 147456
    videos = JudgeRequest.from_loose("video_generation", "x", ["red.mp4", "blue.mp4"]).load(budget, files)
    assert [len(v) for v in videos.media] == [8, 8] and all(isinstance(v, Frames) for v in videos.media)
    assert sum(f.width * f.height for v in videos.media for f in v) <= 147456
    assert videos.media[0].indices == list(range(8)) and videos.media_counts() == (0, 2)
    # the server's share for a group judged two at a time (an edit's source with every pair)
    assert group_share(Task.IMAGE_GENERATION, ["a"] * 8) == (2, 0)
    assert group_share(Task.IMAGE_EDITING, ["a"] * 8, "s") == (3, 0)
    assert group_share(Task.VIDEO_GENERATION, [["f.png"] * 4] * 6) == (8, 0)


def test_loaded_media_can_be_loaded_again_without_growing(files: Path) -> None:
    """Media the server decoded (PIL images, sampled frames) go through the same loader unchanged in size."""
    budget = VisionBudget()
    first = JudgeRequest.from_loose("video_generation", "x", ["red.mp4", "blue.mp4"]).load(budget, files)
    again = JudgeRequest.from_loose("video_generation", "x", list(first.media)).load(budget, files)
    assert [[f.size for f in v] for v in again.media] == [[f.size for f in v] for v in first.media]
    assert again.media[1].indices == first.media[1].indices and again.media[1].fps == first.media[1].fps


# ---------------------------------------------------------------- order


def test_swapped_moves_the_candidates_and_keeps_the_source_first(files: Path) -> None:
    budget = VisionBudget()
    edit = JudgeRequest.from_loose("image_editing", "make it blue", ["red.png", "blue.png"], "green.png",
                                   template_family="unifiedreward-edit").load(budget, files)  # fmt: skip
    images, _ = edit.media_inputs()
    assert [_colour(i) for i in images] == ["green", "red", "blue"]
    back = edit.swapped()
    images, _ = back.media_inputs()
    assert [_colour(i) for i in images] == ["green", "blue", "red"] and back.order == "swapped"
    assert back.candidates == ("blue.png", "red.png") and back.reference == "green.png"
    assert back.swapped().order == "original" and back.swapped().media == edit.media

    video = JudgeRequest.from_loose("video_generation", "x", ["red.mp4", "blue.mp4"]).load(budget, files)
    _, videos = video.swapped().media_inputs()
    assert [_colour(v[0]) for v in videos] == ["blue", "red"]

    qa = JudgeRequest.from_loose("image_understanding", "what colour?", ["red", "blue"], "red.png").load(budget, files)
    text = qa.swapped().messages()[0]["content"][-1]["text"]
    assert text.endswith("Answer 1: [blue]\nAnswer 2: [red]") and qa.swapped().media == qa.media


def test_judge_with_swap_sends_the_other_order(tiny_model: Path, files: Path) -> None:
    rec = Recording(TransformersBackend.load(str(tiny_model)))
    judge = Judge(rec, JudgeOptions(max_new_tokens=2, swap=True, template_family="unifiedreward-edit"))
    res = judge.compare("image_editing", "make it blue", str(files / "red.png"), str(files / "blue.png"),
                        reference=str(files / "green.png"))  # fmt: skip
    assert res.error is None and len(res.samples) == len(res.swapped_samples) == 1
    fwd, bwd = ([_colour(i) for i in media_inputs(m)[0]] for m in rec.messages)
    assert fwd == ["green", "red", "blue"] and bwd == ["green", "blue", "red"]


# ---------------------------------------------------------------- one prompt everywhere


def _text(messages: list[dict[str, Any]]) -> str:
    return next(p["text"] for p in messages[0]["content"] if p["type"] == "text")


@pytest.mark.parametrize("kind", ["image", "edit", "video"])
def test_judge_server_and_export_build_the_same_messages(tiny_model: Path, files: Path, tmp_path: Path, kind: str) -> None:
    pair = {
        "image": _pair("image_generation", ("red.png", "blue.jpg")),
        "edit": _pair("image_editing", ("red.png", "blue.jpg"), reference="green.png"),
        "video": _pair("video_generation", ("red.mp4", "blue.mp4")),
    }[kind]
    family = "unifiedreward-edit" if kind == "edit" else None
    rec = Recording(TransformersBackend.load(str(tiny_model)))
    judge = Judge(rec, JudgeOptions(max_new_tokens=2, template_family=family))

    # the judge, from the pair file's relative paths
    (res,) = judge.compare_batch([pair], files)
    assert res.error is None, res.error
    by_judge = rec.messages.pop()
    # the request type alone, and the old helper functions
    by_request = JudgeRequest.from_pair(pair, family).load(judge.budget, files).messages()
    assert by_request == by_judge  # texts equal, media equal pixel for pixel
    assert pair_messages(pair, load_pair_media(pair, files, judge.budget), family) == by_judge

    # the server, given the same paths under its media root
    body = {"task": pair.task.value, "prompt": pair.prompt, "candidates": list(pair.candidates)}
    if pair.reference is not None:
        body["reference"] = pair.reference
    if family:
        body["template_family"] = family
    app = create_app(judge, ServerLimits(max_new_tokens=4), media_root=files, model_name="tiny")
    with running(app) as url:
        r = httpx.post(url + "/v1/judge", json=body, timeout=120)
        assert r.status_code == 200, r.text
        served = rec.messages.pop()
        assert served == by_judge
        # the same files sent as data: URLs decode to the same layout and sizes
        if kind != "video":
            def url_of(name: str) -> str:
                mime = "image/jpeg" if name.endswith(".jpg") else "image/png"
                return f"data:{mime};base64," + base64.b64encode((files / name).read_bytes()).decode()

            inline = {**body, "candidates": [url_of(c) for c in pair.candidates]}
            if pair.reference is not None:
                inline["reference"] = url_of(pair.reference)
            r = httpx.post(url + "/v1/judge", json=inline, timeout=120)
            assert r.status_code == 200, r.text
            sent = rec.messages.pop()
            assert _text(sent) == _text(by_judge)
            got, want = media_inputs(sent)[0], media_inputs(by_judge)[0]
            assert [(i.size, _colour(i)) for i in got] == [(i.size, _colour(i)) for i in want]
        # bad input is refused before any media are read, naming the field
        bad = {**body, "reference": "green.png"} if kind != "edit" else {k: v for k, v in body.items() if k != "reference"}
        r = httpx.post(url + "/v1/judge", json=bad, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == "reference", r.text
        assert not rec.messages

    # the exporter: the same text, the same files in the same order
    out = tmp_path / "trl"
    export_pairs([pair], out, ExportConfig(format="trl", media_root=str(files), family=family, trl_kinds=("grpo",)))
    (row,) = [json.loads(line) for line in (out / "grpo.jsonl").read_text().splitlines()]
    assert _text(row["prompt"]) == _text(by_judge)
    types = [p["type"] for p in row["prompt"][0]["content"]]
    assert types == [p["type"] for p in JudgeRequest.from_pair(pair, family).load(judge.budget, files)
                     .messages(video_as="frames")[0]["content"]]  # fmt: skip
    exported = [Image.open(out / p) for p in row["images"]]
    if kind == "video":  # each video as its 8 sampled frames
        assert [_colour(i) for i in exported] == ["red"] * 8 + ["blue"] * 8
    else:
        names = [pair.reference] * (kind == "edit") + list(pair.candidates)
        assert [(out / p).read_bytes() for p in row["images"]] == [(files / n).read_bytes() for n in names]
