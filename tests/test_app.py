"""The app without a browser: request validation, the preview is what the model receives, the named
``judge`` endpoint returns the CLI's JSON (through gradio_client), basic auth, the CLI entry."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unireward.app.judging import JudgeRequest
from unireward.app.preview import seen_media
from unireward.demo.synthetic import draw_shape, write_video
from unireward.judge.backends import Backend, BatchingBackend, TransformersBackend
from unireward.judge.judge import Judge
from unireward.judge.options import JudgeOptions
from unireward.judge.request import media_inputs
from unireward.media import VisionBudget
from unireward.protocol.tasks import Task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recording(Backend):
    """Passes requests to the real backend and keeps the messages it was given."""

    def __init__(self, inner: Backend):
        self.inner, self.budget, self.name = inner, inner.budget, inner.name
        self.messages: list[list[dict[str, Any]]] = []

    def generate(self, messages_list: list, params: Any) -> list:
        self.messages.extend(messages_list)
        return self.inner.generate(messages_list, params)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real-sized files: 1024x768 photos-sized PNGs and 384-px mp4s of 20 frames at 8 fps."""
    root = tmp_path_factory.mktemp("app-media")
    out = {}
    for name, colour in (("red", "red"), ("blue", "blue")):
        out[f"{name}.png"] = root / f"{name}.png"
        draw_shape("circle", colour, 384).resize((1024, 768)).save(out[f"{name}.png"])
        out[f"{name}.mp4"] = root / f"{name}.mp4"
        write_video(out[f"{name}.mp4"], [draw_shape("square", colour if i < 10 else "green", 384) for i in range(20)], 8)
    return out


@pytest.fixture(scope="module")
def tiny_judge(tiny_model: Path) -> Judge:
    # as `unireward app` builds it: concurrent users' requests merged by one batching worker
    return Judge(BatchingBackend(Recording(TransformersBackend.load(str(tiny_model)))), JudgeOptions(max_new_tokens=24))


def test_request_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="caption is empty"):
        JudgeRequest(Task.IMAGE_GENERATION, "  ", ("a.png", "b.png"))
    with pytest.raises(ValueError, match="candidate 2 has no file"):
        JudgeRequest(Task.IMAGE_GENERATION, "a cat", ("a.png", None))
    with pytest.raises(ValueError, match="candidate 1 has no answer"):
        JudgeRequest(Task.IMAGE_UNDERSTANDING, "what?", ("", "b"), reference="r.png")
    with pytest.raises(ValueError, match="needs a reference video"):
        JudgeRequest(Task.VIDEO_UNDERSTANDING, "what?", ("a", "b"))
    with pytest.raises(ValueError, match="has no pairwise prompts"):
        JudgeRequest(Task.IMAGE_GENERATION, "a cat", ("a.png", "b.png"), template_family="unireward-pointwise")
    with pytest.raises(ValueError, match="image_editing needs the source image"):
        JudgeRequest(Task.IMAGE_EDITING, "make it blue", ("a.png", "b.png"))
    with pytest.raises(ValueError, match="no prompt for image_editing; it covers"):
        JudgeRequest(Task.IMAGE_EDITING, "make it blue", ("a.png", "b.png"), reference="s.png",
                     template_family="unifiedreward-think")
    with pytest.raises(ValueError, match="has no pointwise prompts"):
        JudgeRequest(Task.IMAGE_GENERATION, "a cat", ("a.png", None), pointwise=True, template_family="unifiedreward-think")
    with pytest.raises(ValueError, match="temperature above 0"):
        JudgeRequest(Task.IMAGE_GENERATION, "a cat", ("a.png", "b.png"), num_samples=3)
    # pointwise scores candidate 1, and candidate 2 only when given
    assert JudgeRequest(Task.IMAGE_GENERATION, "a cat", ("a.png", None), pointwise=True).candidates == ("a.png", None)
    # a reference left in the hidden field of another task is not sent
    assert JudgeRequest(Task.IMAGE_GENERATION, "a cat", ("a.png", "b.png"), reference="r.png").reference is None
    # a family with both modes serves either
    JudgeRequest(Task.IMAGE_EDITING, "make it blue", ("a.png", None), reference="s.png", pointwise=True,
                 template_family="unifiedreward-edit")


@pytest.mark.parametrize("kind", ["png", "mp4", "edit"])
def test_preview_is_exactly_what_the_model_receives(tiny_judge: Judge, media: dict[str, Path], kind: str) -> None:
    task = {"png": Task.IMAGE_GENERATION, "mp4": Task.VIDEO_GENERATION, "edit": Task.IMAGE_EDITING}[kind]
    ext = "mp4" if kind == "mp4" else "png"
    a, b = str(media[f"red.{ext}"]), str(media[f"blue.{ext}"])
    source = str(media["blue.png"]) if kind == "edit" else None
    seen = seen_media(task, (a, b), source, tiny_judge.budget)
    rec: Recording = tiny_judge.backend.inner  # type: ignore[attr-defined]
    rec.messages.clear()
    res = tiny_judge.compare(task, "a red shape", a, b, reference=source,
                             template_family="unifiedreward-edit" if kind == "edit" else None)  # fmt: skip
    assert res.error is None, res.error
    images, videos = media_inputs(rec.messages[0])
    given = videos if kind == "mp4" else images
    slots = ("candidate_1", "candidate_2")
    if kind == "edit":  # the source image comes first and shares the budget with the two edits
        slots = ("reference", *slots)
    assert len(given) == len(slots)
    for slot, medium in zip(slots, given, strict=True):
        frames = medium if kind == "mp4" else [medium]
        shown = seen[slot].frames
        assert len(shown) == len(frames) == (tiny_judge.budget.frames if kind == "mp4" else 1)
        for x, y in zip(shown, frames, strict=True):
            assert x.size == y.size and np.array_equal(np.asarray(x), np.asarray(y))
    if kind == "mp4":  # captions say which source frames and when
        assert seen["candidate_1"].captions[-1].startswith("frame 19 · 2.38 s")
        assert seen["candidate_1"].summary.startswith("8 of 20 frames at 8 fps")
    else:
        assert "(file 1024×768)" in seen["candidate_1"].summary


def test_preview_reports_bad_media_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    seen = seen_media(Task.IMAGE_GENERATION, (str(bad), None), None, VisionBudget())
    assert seen["candidate_1"].error.startswith("broken.png: cannot decode image")
    assert not seen["candidate_1"].frames and seen["candidate_2"] is None
    seen = seen_media(Task.VIDEO_UNDERSTANDING, ("an answer", "another"), str(empty), VisionBudget())
    assert seen["reference"].error == "empty.mp4: file is empty"


def _cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    from unireward.cli import main

    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_judge_endpoint_returns_the_cli_json(
    tiny_model: Path, tiny_judge: Judge, media: dict[str, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gradio_client import Client, handle_file

    from unireward.app.layout import AppSettings
    from unireward.app.server import ServerOptions, serve

    # Nothing in this process may look beyond the machine (analytics, version checks, share links):
    # offline such a call would hang or fail, so any attempt is refused and recorded.
    outside: list[Any] = []
    real_lookup, real_connect = socket.getaddrinfo, socket.socket.connect

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", None):
            outside.append(host)
            raise socket.gaierror(f"{host}: refused by the test")
        return real_lookup(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            outside.append(address)
            raise OSError(f"{address}: refused by the test")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket.socket, "connect", connect)
    port = free_port()
    app = serve(tiny_judge, ServerOptions(port=port, auth=("ana", "pw"), examples=False), AppSettings(), block=False)
    try:
        import httpx

        assert httpx.get(f"http://127.0.0.1:{port}/config").status_code == 401  # basic auth holds
        client = Client(f"http://127.0.0.1:{port}/", auth=("ana", "pw"), verbose=False)
        assert "/judge" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        a, b = str(media["red.png"]), str(media["blue.png"])
        common = dict(template_family="unifiedreward-think", swap=True, num_samples=1, temperature=0.0,
                      max_new_tokens=24, prompt="a red circle", answer_1="", answer_2="", reference=None)  # fmt: skip
        got = client.predict(task="image_generation", mode="pairwise", candidate_1=handle_file(a),
                             candidate_2=handle_file(b), api_name="/judge", **common)  # fmt: skip
        want = _cli_json(capsys, ["judge", "--model", str(tiny_model), "--task", "image_generation", "--prompt",
                                  "a red circle", "--candidate", a, "--candidate", b, "--swap", "--max-new-tokens", "24"])  # fmt: skip
        assert got == want
        assert len(got["votes"]) == 2 and len(got["swapped_samples"]) == 1
        got = client.predict(task="image_generation", mode="pointwise", candidate_1=handle_file(a),
                             candidate_2=None, api_name="/judge", **{**common, "template_family": "unireward-pointwise"})  # fmt: skip
        want = _cli_json(capsys, ["judge", "--model", str(tiny_model), "--task", "image_generation", "--prompt",
                                  "a red circle", "--candidate", a, "--pointwise", "--max-new-tokens", "24"])  # fmt: skip
        assert got == [want]
        # two users at once: both go through the queue and the shared judge, neither disturbs the other
        jobs = [client.submit(task="image_generation", mode="pairwise", candidate_1=handle_file(x),
                              candidate_2=handle_file(y), api_name="/judge", **common) for x, y in ((a, b), (b, a))]  # fmt: skip
        rows = [j.result(timeout=120) for j in jobs]
        assert [r["error"] for r in rows] == [None, None] and all(len(r["votes"]) == 2 for r in rows)
    finally:
        app.close()
    assert outside == []


def test_cli_registers_app_and_refuses_missing_model(capsys: pytest.CaptureFixture[str]) -> None:
    from unireward.cli import build_parser, main

    args = build_parser().parse_args(["app", "--model", "m"])
    assert (args.host, args.port, args.auth) == ("127.0.0.1", 7860, None)
    assert main(["app"]) == 2
    err = json.loads(capsys.readouterr().err)
    assert "give --model" in err["message"]
    assert main(["app", "--model", "m", "--auth", "nopassword"]) == 2
    assert "USER:PASSWORD" in capsys.readouterr().err


def test_app_over_unireward_serve(tiny_model: Path, media: dict[str, Path]) -> None:
    """``--base-url`` at ``unireward serve`` without ``--model``: the served name is looked up, and a
    video pair is judged over HTTP with the frames the preview shows."""
    from unireward.app.cli import make_judge
    from unireward.app.judging import run_request
    from unireward.cli import build_parser
    from unireward.demo.teacher import BackgroundServer
    from unireward.serve import create_app

    server_judge = Judge(TransformersBackend.load(str(tiny_model)), JudgeOptions(max_new_tokens=24))
    with BackgroundServer(create_app(server_judge, model_name="tiny-judge")) as srv:
        args = build_parser().parse_args(["app", "--base-url", srv.base_url, "--max-new-tokens", "24"])
        judge, model = make_judge(args)
        assert model == "tiny-judge" and judge.backend.name == f"tiny-judge@{srv.base_url}"
        a, b = str(media["red.mp4"]), str(media["blue.mp4"])
        row = run_request(judge, JudgeRequest(Task.VIDEO_GENERATION, "a red square turning green", (a, b), swap=True))
    assert row["error"] is None and row["task"] == "video_generation"
    assert len(row["samples"]) == 1 and len(row["swapped_samples"]) == 1 and len(row["votes"]) == 2


def test_render_covers_ties_shares_swaps_and_pointwise_pairs() -> None:
    from unireward.app import render

    tie = {"status": "ok", "winner": None, "tie": True, "overall": {"1": 0.5, "2": 0.5}, "dimensions": [],
           "totals": None, "totals_consistent": None, "votes": [None]}  # fmt: skip
    assert "Tie" in render.verdict_html(tie, "image_editing") and render.winner(tie) is None
    assert "<td>Preference share (0–1)</td><td>0.5</td><td>0.5</td>" in render.score_table_html(tie, "image_editing")
    swapped = {"status": "ok", "winner": 2, "votes": [2, 2], "preference": 0.0, "agreement": 1.0,
               "dimensions": [{"name": "Alignment", "scores": {"1": 3.0, "2": 5.0}}], "totals": None,
               "swapped_representative": True, "samples": ["a"], "swapped_samples": ["b"]}  # fmt: skip
    assert "both orders agree" in render.verdict_html(swapped, "image_generation")
    assert "relabelled to the order shown" in render.score_table_html(swapped, "image_generation")
    assert render.raw_text(swapped) == "--- as given, sample 1 ---\na\n\n--- swapped, sample 1 ---\nb"
    pointwise = [{"score": 4.0, "dimensions": [{"name": "Alignment", "scores": {"1": 4.0}}], "samples": ["x"]},
                 {"score": 2.5, "dimensions": [{"name": "Alignment", "scores": {"1": 2.5}}], "samples": ["y"]}]  # fmt: skip
    assert render.winner(pointwise) == 1 and "Image 1 scores higher" in render.verdict_html(pointwise, "image_generation")
    assert "<td>Alignment</td><td>4</td><td>2.5</td>" in render.score_table_html(pointwise, "image_generation")
    error = {"status": "invalid", "winner": None, "error": "/tmp/gradio/ab12/x.<b>.png: cannot decode image"}
    html = render.verdict_html(error, "image_generation")
    assert "x.&lt;b&gt;.png: cannot decode image" in html and "/tmp/" not in html  # short, and escaped


def test_uploads_are_bounded_by_the_judges_limit_and_expire(tiny_judge: Judge, tmp_path: Path) -> None:
    """Gradio writes every upload to disk before a handler runs: above the size limit it answers 413
    (nothing written); what it keeps is deleted once older than the upload TTL."""
    import httpx

    from unireward.app.layout import AppSettings
    from unireward.app.server import ServerOptions, serve

    port = free_port()
    app = serve(tiny_judge, ServerOptions(port=port, examples=False, max_file_size=200_000, upload_ttl_s=4),
                AppSettings(), block=False)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/gradio_api/upload"
        big = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
        r = httpx.post(url, files={"files": ("big.png", big, "image/png")}, timeout=30)
        assert r.status_code == 413, r.text
        small = tmp_path / "small.png"
        draw_shape("circle", "red", 64).save(small)
        r = httpx.post(url, files={"files": ("small.png", small.read_bytes(), "image/png")}, timeout=30)
        assert r.status_code == 200, r.text
        stored = Path(r.json()[0])
        assert stored.is_file()
        deadline = time.monotonic() + 30
        while stored.exists():  # deleted once older than 4 s (checked every second)
            assert time.monotonic() < deadline, stored
            time.sleep(0.5)
    finally:
        app.close()
    default = serve(tiny_judge, ServerOptions(port=free_port(), examples=False), AppSettings(), block=False)
    try:
        assert default.max_file_size == tiny_judge.budget.max_file_bytes  # the judge's own limit on a file
    finally:
        default.close()
