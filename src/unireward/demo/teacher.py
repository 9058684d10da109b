"""A scripted teacher for the synthetic task, served over the OpenAI chat-completions API.

It stands in for GPT-4o in the distillation stage: it receives exactly what a real teacher gets
(the official prompt text and base64 images), *reads the colours from the pixels*, and writes a
chain of thought in the ``<think>``/``<answer>`` contract: a description of each candidate first,
then per-dimension scores and totals, then the verdict. With probability ``1 - accuracy`` it
misperceives (swaps what it saw of the two candidates), which yields a fluent, self-consistent,
wrong judgment — the kind the distillation filter must drop. Whether it errs on a request is drawn
from a hash of (seed, the request's id), not from the order requests arrive, so the same seed gives
the same answers at any concurrency or load.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from PIL import Image

from unireward.demo.synthetic import PALETTE, read_colour
from unireward.protocol.tasks import Task, answer_label

_COLOUR_WORD = re.compile(r"\b(" + "|".join(PALETTE) + r")\b")
_TASK_BY_OPENING = (
    ("two images", Task.IMAGE_GENERATION),
    ("two videos", Task.VIDEO_GENERATION),
    ("reference image", Task.IMAGE_UNDERSTANDING),
    ("about the image", Task.IMAGE_UNDERSTANDING),
    ("reference video", Task.VIDEO_UNDERSTANDING),
    ("about the video", Task.VIDEO_UNDERSTANDING),
)


def detect_task(text: str) -> Task | None:
    """Which task a pairwise prompt is about, from its instructions.

    >>> detect_task("Given a caption and two videos generated based on this caption, ...")
    <Task.VIDEO_GENERATION: 'video_generation'>
    """
    head = text[:200]
    for key, task in _TASK_BY_OPENING:
        if key in head:
            return task
    return None


def _field(text: str, name: str) -> str:
    # The last occurrence: the official templates show "Answer 1: ..." in their example first.
    found = re.findall(rf"{name}:\s*\[?(.*?)\]?\s*(?:\n|$)", text)
    return found[-1].strip() if found else ""


def colours_in(text: str) -> list[str]:
    """Palette colour words in ``text``, in order.

    >>> colours_in("a square turning from red to blue")
    ['red', 'blue']
    """
    return _COLOUR_WORD.findall(text)


def _shape(text: str) -> str:
    m = re.search(r"\b(circle|square|triangle|star)\b", text)
    return m.group(1) if m else "shape"


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def synthetic_cot(task: Task, text: str, seen: list[list[str]], correct: bool = True, brief: bool = False) -> str:
    """The chain of thought for one request.

    ``seen`` holds the colours read from each visual input in order: one list per image (length 1)
    or per video (its frames). Generation tasks have two inputs (the candidates); understanding
    tasks one (the reference). ``correct=False`` swaps the perception of the two candidates.
    ``brief=True`` gives what a judge without chain of thought says: the descriptions and the verdict,
    no tags, comparisons or scores.

    >>> print(synthetic_cot(Task.IMAGE_GENERATION, "Text Caption: [a red circle]", [["blue"], ["red"]]))
    <think>
    Caption: red circle. Image 1: blue, no match. Image 2: red, match.
    1. Semantic consistency: Image 1 (3/10); Image 2 (9/10)
    Total score:
    Image 1: 3
    Image 2: 9
    </think>
    <answer>Image 2 is better</answer>
    """
    if task.is_generation:
        caption = _field(text, "Text Caption")
        shape = _shape(caption)
        asked = colours_in(caption)
        views = [s[:1] if task is Task.IMAGE_GENERATION else [s[0], s[-1]] for s in seen[:2]]
        if not correct:
            views = views[::-1]
        noun = "Image" if task is Task.IMAGE_GENERATION else "Video"
        if task is Task.IMAGE_GENERATION:
            want = asked[:1]
            first = f"Caption: {' '.join(want)} {shape}."
        else:
            want = asked[:2]
            first = f"Caption: {' to '.join(want)}."
        match = [v == want for v in views]
        s = [9 if m else 3 for m in match]
        # Each candidate is described, then compared at once with the wanted colour(s).
        judged = [f"{noun} {i}: {' to '.join(v)}" + ("." if brief else f", {'match' if m else 'no match'}.")
                  for i, (v, m) in enumerate(zip(views, match, strict=True), 1)]  # fmt: skip
        lines = [" ".join([first, *judged])]
        lines.append(f"1. Semantic consistency: {noun} 1 ({s[0]}/10); {noun} 2 ({s[1]}/10)")
    else:
        noun = "Answer"
        answers = [_field(text, "Answer 1"), _field(text, "Answer 2")]
        said = [(colours_in(a) or ["nothing"])[-1] for a in answers]
        if not correct:
            said = said[::-1]
        frames = seen[0] if seen else ["none"]
        fact = frames[-1]
        what = f"Image: {fact} {_shape(text)}." if task is Task.IMAGE_UNDERSTANDING else f"Video: {frames[0]} to {fact}."
        s = [9 if c == fact else 3 for c in said]
        judged = [f"Answer {i}: {c}" + ("." if brief else f", {'match' if c == fact else 'no match'}.")
                  for i, c in enumerate(said, 1)]  # fmt: skip
        lines = [" ".join([what, *judged])]
        lines.append(f"1. Correctness: Answer 1 ({s[0]}/10); Answer 2 ({s[1]}/10)")
    winner = 1 if s[0] >= s[1] else 2
    if brief:
        return f"{lines[0]}\n{answer_label(task, winner)}"
    # One scored dimension keeps the chain short for CPU training; totals are still stated.
    lines += ["Total score:", f"{noun} 1: {s[0]}", f"{noun} 2: {s[1]}"]
    return "<think>\n" + "\n".join(lines) + "\n</think>\n<answer>" + answer_label(task, winner) + "</answer>"


def _decode_image(url: str) -> Image.Image:
    if not url.startswith("data:"):
        raise ValueError("the scripted teacher accepts only base64 data URLs")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def read_request(messages: list[dict[str, Any]]) -> tuple[str, list[Image.Image]]:
    """The user text and images of an OpenAI-format request."""
    text, images = "", []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            text += content
            continue
        for part in content or []:
            if part.get("type") == "text":
                text += part.get("text", "")
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"] if isinstance(part.get("image_url"), dict) else part.get("image_url")
                images.append(_decode_image(url))
    return text, images


def request_key(text: str, images: list[Image.Image]) -> str:
    """A request's identity when the client names none: a digest of its text and pixels.

    >>> request_key("a", []) == request_key("a", []), request_key("a", []) == request_key("b", [])
    (True, False)
    """
    h = hashlib.sha256(text.encode())
    for im in images:
        h.update(f"{im.size}".encode())
        h.update(im.tobytes())
    return h.hexdigest()


def draws_correct(seed: int, key: str, accuracy: float) -> bool:
    """Whether the teacher judges the request named ``key`` correctly: a hash of (seed, key) read as
    a uniform number in [0, 1), so the draw does not depend on when the request arrives.

    >>> draws_correct(0, "pair-1", 1.0), draws_correct(0, "pair-1", 0.0)
    (True, False)
    >>> sum(draws_correct(0, f"p{i}", 0.85) for i in range(2000)) / 2000
    0.859
    """
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < accuracy


@dataclass
class ScriptedTeacher:
    """Answers requests like a teacher that is right with probability ``accuracy``."""

    accuracy: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.accuracy <= 1.0:
            raise ValueError("accuracy must be in [0, 1]")

    def answer(self, messages: list[dict[str, Any]], key: str | None = None) -> str:
        return self.answer_request(*read_request(messages), key=key)

    def answer_request(self, text: str, images: list[Image.Image], key: str | None = None) -> str:
        """The judgment for a request already split into its text and images. ``key`` names the
        request (distillation sends the pair id); without one, the request's content names it."""
        task = detect_task(text)
        if task is None:
            return "I can only judge the four unireward pairwise tasks."
        colours = [read_colour(im) for im in images]
        if task is Task.IMAGE_GENERATION:
            seen = [[c] for c in colours[:2]]
        elif task is Task.VIDEO_GENERATION:
            half = len(colours) // 2
            seen = [colours[:half], colours[half:]]
        else:
            seen = [colours]
        correct = draws_correct(self.seed, key if key is not None else request_key(text, images), self.accuracy)
        return synthetic_cot(task, text, seen, correct)


def create_teacher_app(teacher: ScriptedTeacher, model_name: str = "scripted-teacher") -> Any:
    """A FastAPI app with the OpenAI ``/v1/chat/completions`` route answering as ``teacher``."""
    app = FastAPI(title="unireward scripted teacher")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "unireward"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HTTPException(400, "messages must be a non-empty list")
        try:
            prompt_text, images = read_request(messages)
            text = teacher.answer_request(prompt_text, images, key=request.headers.get("x-client-request-id"))
        except Exception as e:  # a malformed image is the client's fault
            raise HTTPException(400, f"cannot read request: {type(e).__name__}: {e}") from None
        # Rough usage like a real endpoint reports it: ~4 characters a text token, one token per
        # 28x28 pixels of image (the base64 payload is not text the model reads).
        n_in = len(prompt_text) // 4 + sum(im.width * im.height // 784 for im in images)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", model_name),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": n_in, "completion_tokens": len(text) // 4, "total_tokens": n_in + len(text) // 4},
        }  # fmt: skip

    return app


class BackgroundServer:
    """Run an ASGI app with uvicorn in a daemon thread on 127.0.0.1 (a free port unless given)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on {self.host}:{self.port} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def brief_judgment(pair: Any, media_root: str | None, budget: Any, family: str | None = None) -> str:
    """What a judge without chain of thought says about a synthetic pair (descriptions, verdict),
    read from the pixels the way the teacher reads them; used to stand in for a pre-trained base judge."""
    from unireward.protocol.templates import render_text
    from unireward.request import load_pair_media

    media = load_pair_media(pair, media_root, budget)
    seen = [[read_colour(f) for f in m] if isinstance(m, list) else [read_colour(m)] for m in media]
    text = render_text(pair.task, pair.prompt, () if pair.task.is_generation else tuple(pair.candidates), family=family)
    return synthetic_cot(pair.task, text, seen, brief=True)
