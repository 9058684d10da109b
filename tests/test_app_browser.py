"""The app in a real browser: Playwright drives headless Chromium (the system's ``chromium``) against
the page, uploads files, types, presses Judge and reads what the page shows.

Two pages run: one over a judge at an OpenAI-compatible URL (the scripted synthetic-task teacher,
which reads the pixels and writes a scored chain of thought, so there is a real verdict and score
table to read) and one over the tiny random local model (its outputs are noise; the page must show
them honestly). Every request the browser makes is checked to stay on 127.0.0.1; a screenshot of
each test is saved under pytest's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from unireward.demo.synthetic import draw_shape, write_video
from unireward.judge.backends import BatchingBackend, TransformersBackend
from unireward.judge.judge import Judge
from unireward.judge.options import JudgeOptions

CHROMIUM = os.environ.get("UNIREWARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TIMEOUT_MS = 30_000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium (or set UNIREWARD_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _serve(judge: Judge, examples: bool) -> Any:
    from unireward.app.layout import AppSettings
    from unireward.app.server import ServerOptions, serve

    return serve(judge, ServerOptions(port=_port(), examples=examples), AppSettings(model_name=judge.name), block=False)


@pytest.fixture(scope="module")
def teacher_app() -> Iterator[Any]:
    from unireward.demo.teacher import BackgroundServer, ScriptedTeacher, create_teacher_app

    with BackgroundServer(create_teacher_app(ScriptedTeacher(accuracy=1.0))) as srv:
        app = _serve(Judge.from_endpoint(srv.base_url, "scripted-teacher"), examples=True)
        yield app
        app.close()


@pytest.fixture(scope="module")
def tiny_app(tiny_model: Path) -> Iterator[Any]:
    backend = BatchingBackend(TransformersBackend.load(str(tiny_model)))
    app = _serve(Judge(backend, JudgeOptions(max_new_tokens=32)), examples=False)
    yield app
    app.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser-media")
    out = {"blue.png": root / "blue.png", "yellow.png": root / "yellow.png"}
    draw_shape("star", "blue", 384).save(out["blue.png"])
    draw_shape("star", "yellow", 384).save(out["yellow.png"])
    for name, (c1, c2) in {"red-to-blue.mp4": ("red", "blue"), "blue-to-red.mp4": ("blue", "red")}.items():
        out[name] = root / name
        write_video(out[name], [draw_shape("circle", c1 if i < 8 else c2, 384) for i in range(16)], 8)
    out["corrupt.mp4"] = root / "corrupt.mp4"
    out["corrupt.mp4"].write_bytes(out["red-to-blue.mp4"].read_bytes()[:200])
    return out


class Page:
    """One browser tab on an app, refusing any request that leaves the machine."""

    def __init__(self, browser: Any, app: Any, shot: Path):
        self.url = app.local_url
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 1400})
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.outside: list[str] = []
        self.page.route("**/*", self._route)
        self.shot = shot
        self.page.goto(self.url)
        self.page.wait_for_selector("#ur-judge")

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def choose_task(self, task: str) -> None:
        self.page.locator("#ur-task input").click()
        self.page.get_by_role("option", name=task, exact=True).click()

    def upload(self, slot: str, path: Path, wait_for: str = "Model sees") -> None:
        self.page.locator(f"#ur-{'reference' if slot == 'ref' else 'file-' + slot} input[type=file]").set_input_files(str(path))
        self.page.locator(f"#ur-note-{slot}").get_by_text(wait_for).wait_for()

    def judge(self) -> str:
        self.page.locator("#ur-judge").click()
        self.page.locator("#ur-verdict .ur-verdict").wait_for()
        return self.page.locator("#ur-verdict").inner_text()

    def table(self) -> list[list[str]]:
        rows = self.page.locator("#ur-table tr")
        return [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(rows.count())]

    def close(self) -> None:
        self.page.screenshot(path=str(self.shot), full_page=True)
        self.ctx.close()
        assert self.outside == [], f"the page tried to reach the network: {self.outside}"


@pytest.fixture
def open_page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    pages: list[Page] = []

    def make(app: Any) -> Page:
        pages.append(Page(browser, app, tmp_path / "screenshot.png"))
        return pages[-1]

    yield make
    for p in pages:
        p.close()
        assert p.shot.stat().st_size > 10_000


def test_image_pair(open_page: Any, teacher_app: Any, files: dict[str, Path]) -> None:
    page = open_page(teacher_app)
    page.upload("1", files["blue.png"])
    page.upload("2", files["yellow.png"])
    page.page.locator("#ur-prompt textarea").fill("a yellow star")
    assert page.judge().startswith("Image 2 is better")
    assert page.table() == [["Dimension", "Image 1", "Image 2"], ["Semantic consistency", "3", "9"],
                            ["Total (stated)", "3", "9"], ["Preference share (0–1)", "0.25", "0.75"]]  # fmt: skip
    assert "agree with the verdict: yes" in page.page.locator("#ur-table").inner_text()
    # the winner is marked on the candidate itself, not only in the verdict line
    assert "ur-winner" in page.page.locator("#ur-cand-2").get_attribute("class")
    assert "ur-winner" not in page.page.locator("#ur-cand-1").get_attribute("class")
    assert page.page.locator("#ur-badge-2").inner_text().startswith("Preferred")
    # the 384-px upload is shown at the size the model gets
    assert "image 364×364 px (file 384×384)" in page.page.locator("#ur-note-1").inner_text()
    page.page.locator("#ur-reasoning-box").get_by_text("Reasoning").click()
    assert "Image 2: yellow, match" in page.page.locator("#ur-reasoning textarea").input_value()


def test_video_pair_shows_the_sampled_frames(open_page: Any, teacher_app: Any, files: dict[str, Path]) -> None:
    page = open_page(teacher_app)
    page.choose_task("video_generation")
    page.upload("1", files["blue-to-red.mp4"])
    page.upload("2", files["red-to-blue.mp4"])
    page.page.locator("#ur-prompt textarea").fill("a circle turning from red to blue")
    note = page.page.locator("#ur-note-1").inner_text()
    assert re.search(r"8 of 16 frames at 8 fps, \d+×\d+ px each", note), note
    assert page.page.locator("#ur-seen-1 img").count() >= 8
    assert page.judge().startswith("Video 2 is better")
    table = page.table()
    assert table[0] == ["Dimension", "Video 1", "Video 2"] and table[-2] == ["Total (stated)", "3", "9"]


def test_corrupt_file_shows_its_error(open_page: Any, teacher_app: Any, files: dict[str, Path]) -> None:
    page = open_page(teacher_app)
    page.choose_task("video_generation")
    page.upload("1", files["corrupt.mp4"], wait_for="corrupt.mp4:")
    page.upload("2", files["red-to-blue.mp4"])
    error = page.page.locator("#ur-note-1").inner_text()
    assert "corrupt.mp4: " in error and page.page.locator("#ur-seen-1 img").count() == 0
    page.page.locator("#ur-prompt textarea").fill("a circle turning from red to blue")
    verdict = page.judge()
    assert verdict.startswith("Error") and "corrupt.mp4: " in verdict
    assert error.split("corrupt.mp4: ", 1)[1] in verdict  # the same MediaError reason in both places


def test_one_click_example(open_page: Any, teacher_app: Any, tmp_path: Path) -> None:
    from unireward.app.examples import build_examples

    # the page's examples are deterministic: the same call gives their right answers
    label = next(e.label for e in build_examples(tmp_path / "ex") if e.task == "video_understanding")
    page = open_page(teacher_app)
    page.page.locator("#ur-examples").get_by_text("video_understanding", exact=True).click()
    page.page.locator("#ur-verdict .ur-verdict").wait_for()
    verdict = page.page.locator("#ur-verdict").inner_text()
    assert verdict.startswith(f"Answer {label} is better"), verdict
    # the preview is its own event: it may land after the verdict
    page.page.locator("#ur-note-ref").get_by_text("Model sees: 8 of 8 frames").wait_for()


def test_local_model_swap_and_samples(open_page: Any, tiny_app: Any, files: dict[str, Path]) -> None:
    page = open_page(tiny_app)
    page.choose_task("image_understanding")
    page.upload("ref", files["blue.png"])
    page.page.locator("#ur-prompt textarea").fill("What colour is the star?")
    page.page.locator("#ur-answer-1 textarea").fill("It is blue.")
    page.page.locator("#ur-answer-2 textarea").fill("It is yellow.")
    page.page.locator("#ur-swap input").check()
    page.page.locator("#ur-samples input[type=number]").fill("2")
    page.page.locator("#ur-samples input[type=number]").press("Enter")
    page.page.wait_for_function("document.querySelector('#ur-temperature input[type=number]').value === '1'")
    page.judge()
    # a random model rarely states a verdict: whatever it said, every sample's vote is listed
    votes = page.page.locator("#ur-votes li").all_inner_texts()
    assert [v.split(":")[0] for v in votes] == ["as given", "as given", "swapped", "swapped"]
    page.page.locator("#ur-raw-box").get_by_text("Raw output").click()
    raw = page.page.locator("#ur-raw textarea").input_value()
    assert "--- as given, sample 2 ---" in raw and "--- swapped, sample 1 ---" in raw


def test_local_model_pointwise(open_page: Any, tiny_app: Any, files: dict[str, Path]) -> None:
    page = open_page(tiny_app)
    page.page.locator("#ur-mode").get_by_text("pointwise").click()
    page.page.wait_for_function("document.querySelector('#ur-family input').value === 'unireward-pointwise'")
    page.upload("1", files["yellow.png"])
    page.page.locator("#ur-prompt textarea").fill("a yellow star")
    verdict = page.judge()
    # one candidate given: one score line (a number or why there is none), and the overall-score row
    assert verdict.startswith("Image 1:") and "Image 2" not in verdict
    assert page.table()[-1][:2] == ["Overall score", verdict.split("Image 1: ")[1].split("/10")[0] if "/10" in verdict else "–"]


def test_local_model_image_editing(open_page: Any, tiny_app: Any, files: dict[str, Path]) -> None:
    page = open_page(tiny_app)
    page.choose_task("image_editing")
    # the family follows the task: the official prompts have no editing template, the Edit family does
    page.page.wait_for_function("document.querySelector('#ur-family input').value === 'unifiedreward-edit'")
    assert page.page.locator("#ur-prompt label").inner_text().startswith("Instruction")
    page.upload("ref", files["blue.png"])
    page.upload("1", files["yellow.png"])
    page.upload("2", files["blue.png"])
    assert "Model sees: image 364×364 px (file 384×384)" in page.page.locator("#ur-note-ref").inner_text()
    page.page.locator("#ur-prompt textarea").fill("Make the star yellow.")
    verdict = page.judge()
    assert not verdict.startswith("Error"), verdict
    assert page.page.locator("#ur-raw-box").count() == 1
