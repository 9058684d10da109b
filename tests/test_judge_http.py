"""The OpenAI-compatible client and the HTTP judge backend against small real HTTP servers."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from unireward.judge import ChatClient, ChatError, Judge, build_dpo_pairs, encode_messages, group_rewards
from unireward.judge.generator import Group, best_of_n

Reply = Callable[[dict[str, Any], int], tuple[int, dict[str, Any]]]


class _Server:
    """A tiny chat-completions server on 127.0.0.1; ``reply(body, n)`` decides each answer."""

    def __init__(self, reply: Reply):
        self.reply = reply
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(body)
                    n = len(outer.bodies)
                status, payload = outer.reply(body, n)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(texts: list[str]) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"} for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5 * len(texts), "total_tokens": 11 + 5 * len(texts)},
    }


def _error(status: int) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": f"status {status}", "type": "server_error", "code": None}}


@pytest.fixture
def server() -> Iterator[Callable[[Reply], _Server]]:
    made: list[_Server] = []

    def make(reply: Reply) -> _Server:
        s = _Server(reply)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


def test_retries_a_server_that_fails_twice(server: Callable[[Reply], _Server]) -> None:
    def flaky(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
        if n == 1:
            return _error(500)
        if n == 2:
            return _error(429)
        return 200, _completion(["<think>t</think><answer>Image 1 is better</answer>"])

    s = server(flaky)
    client = ChatClient(s.url, "m", max_retries=4, backoff=0.01)
    [resp] = client.chat_many([_user("hi")], max_tokens=16, temperature=0.0)
    assert not isinstance(resp, ChatError)
    assert resp.text.endswith("</answer>") and resp.usage == {"prompt_tokens": 11, "completion_tokens": 5}
    assert resp.finish_reason == "stop"
    assert len(s.bodies) == 3 and s.bodies[-1]["max_tokens"] == 16


def test_gives_up_after_bounded_retries_and_keeps_order(server: Callable[[Reply], _Server]) -> None:
    def reply(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
        text = body["messages"][0]["content"][0]["text"]
        if text == "always fails":
            return _error(503)
        if text == "bad request":
            return _error(400)
        return 200, _completion([f"echo {text}"])

    s = server(reply)
    client = ChatClient(s.url, "m", max_retries=2, backoff=0.01, concurrency=2)
    out = client.chat_many([_user("a"), _user("always fails"), _user("b"), _user("bad request"), _user("c")])
    assert [o.text for o in (out[0], out[2], out[4])] == ["echo a", "echo b", "echo c"]
    assert isinstance(out[1], ChatError) and out[1].status == 503 and out[1].attempts == 3
    assert "request 1" in str(out[1])
    assert isinstance(out[3], ChatError) and out[3].status == 400 and out[3].attempts == 1  # 4xx: no retry
    texts = [b["messages"][0]["content"][0]["text"] for b in s.bodies]
    assert texts.count("always fails") == 3 and texts.count("bad request") == 1


def test_connection_refused_is_a_chat_error() -> None:
    client = ChatClient("http://127.0.0.1:9/v1", "m", max_retries=1, backoff=0.01, timeout=5)
    [out] = client.chat_many([_user("x")])
    assert isinstance(out, ChatError) and "APIConnectionError" in str(out)


def _decode(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def test_encode_messages_sends_video_as_ordered_frames(tiny_images: list[Path]) -> None:
    colours = ["red", "blue", "green"]
    frames = [Image.new("RGB", (28, 28), c) for c in colours]
    msgs = [{"role": "user", "content": [{"type": "image", "image": str(tiny_images[3])}, {"type": "video", "video": frames}, {"type": "text", "text": "q"}]}]
    parts = encode_messages(msgs)[0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 4 + ["text"]
    assert _decode(parts[0]["image_url"]["url"]).getpixel((0, 0)) == (255, 255, 0)  # the yellow file
    got = [_decode(p["image_url"]["url"]).getpixel((0, 0)) for p in parts[1:4]]
    assert got == [(255, 0, 0), (0, 0, 255), (0, 128, 0)]


def _redness(url: str) -> int:
    r, g, b = _decode(url).getpixel((0, 0))
    return r - g - b


def _prefers_red(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
    """A judge that looks at the two images it was sent and prefers the redder one."""
    urls = [p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url"]
    first = _redness(urls[0]) >= _redness(urls[1])
    verdict = "Image 1 is better" if first else "Image 2 is better"
    return 200, _completion([f"<think>compared colours</think>\n<answer>{verdict}</answer>"] * body.get("n", 1))


def _always_first(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
    return 200, _completion(["<think>x</think><answer>Image 1 is better</answer>"] * body.get("n", 1))


def test_http_judge_swap_reports_agreement(server: Callable[[Reply], _Server], tiny_images: list[Path]) -> None:
    red, blue = tiny_images[0], tiny_images[1]
    consistent = Judge.from_endpoint(server(_prefers_red).url, "m", swap=True, max_retries=0)
    res = consistent.compare("image_generation", "a red square", blue, red)
    assert res.winner == 2 and res.votes == [2, 2] and res.agreement == 1.0 and res.status == "ok"

    biased = Judge.from_endpoint(server(_always_first).url, "m", swap=True, max_retries=0)
    res = biased.compare("image_generation", "a red square", blue, red)
    assert res.votes == [1, 2] and res.agreement == 0.0
    assert res.winner is None and res.preference == 0.5 and res.status == "invalid"


def test_http_judge_bad_media_and_dead_server(tiny_images: list[Path], server: Callable[[Reply], _Server]) -> None:
    judge = Judge.from_endpoint(server(_prefers_red).url, "m", max_retries=0)
    out = judge.compare_many(
        [
            {"task": "image_generation", "prompt": "x", "candidates": [str(tiny_images[0]), "missing.png"], "id": "a"},
            {"task": "image_generation", "prompt": "x", "candidates": [str(tiny_images[1]), str(tiny_images[0])], "id": "b"},
        ]
    )
    assert out[0].status == "invalid" and "missing.png" in out[0].reason
    assert out[1].winner == 2
    dead = Judge.from_endpoint("http://127.0.0.1:9/v1", "m", max_retries=0, timeout=5)
    res = dead.compare("image_generation", "x", tiny_images[0], tiny_images[1])
    assert res.status == "invalid" and res.error and "ChatError" in res.error


def test_group_rewards_best_of_n_and_dpo(server: Callable[[Reply], _Server], tiny_images: list[Path], tmp_path: Path) -> None:
    judge = Judge.from_endpoint(server(_prefers_red).url, "m", max_retries=0)
    # red, blue, green, yellow: red wins everything; yellow (255,255,0) beats blue and green on redness
    cands = [str(p) for p in tiny_images]
    best, rewards = best_of_n(judge, "image_generation", "something red", cands)
    assert best == 0 and rewards[0] == 1.0
    assert rewards[3] > rewards[1] and abs(sum(rewards) - len(cands) / 2) < 1e-9
    biased = Judge.from_endpoint(server(_always_first).url, "m", max_retries=0)
    [r] = group_rewards(biased, [Group("image_generation", "x", cands)], both_orders=True)
    assert r.rewards == [0.5] * 4  # position bias cancels out when both orders are judged
    out = tmp_path / "dpo.jsonl"
    groups = [Group("image_generation", "red", cands, id="g1"), Group("image_generation", "same", [cands[1], cands[1]], id="g2")]
    assert build_dpo_pairs(judge, groups, out) == 1  # identical candidates tie: no pair
    row = json.loads(out.read_text())
    assert row["id"] == "g1" and row["chosen"] == cands[0] and row["rejected"] != cands[0]
    assert row["chosen_reward"] > row["rejected_reward"]


# --------------------------------------------------------------- protocols and image editing


def _colours(body: dict[str, Any]) -> list[tuple[int, int, int]]:
    return [_decode(p["image_url"]["url"]).getpixel((0, 0)) for p in body["messages"][0]["content"] if p["type"] == "image_url"]


def _edit_judge(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
    """A UnifiedReward-Edit stand-in: it answers from what it was sent, the source first; the edit
    closer to pure blue wins (rank), each edit gets a score (pair score), one edit a score list."""
    text = body["messages"][0]["content"][-1]["text"]
    cols = _colours(body)
    blue = [c[2] - c[0] - c[1] for c in cols[1:]]
    if "determining which one is better" in text:
        out = f"Edited Image {1 if blue[0] >= blue[1] else 2} is better."
    elif "assigning scores to two edited images" in text:
        out = f"Image 1: {blue[0] / 100:.2f}\nImage 2: {blue[1] / 100:.2f}"
    else:
        out = '{\n"reasoning" : "checked",\n"score" : [' + str(25 if blue[0] > 0 else 0) + ', 10],\n}'
    return 200, _completion([out] * body.get("n", 1))


def test_editing_request_carries_source_then_edits_in_the_official_order(
    server: Callable[[Reply], _Server], tiny_images: list[Path]
) -> None:
    red, blue, green = (str(p) for p in tiny_images[:3])  # the source is red; the blue edit follows "make it blue"
    s = server(_edit_judge)
    judge = Judge.from_endpoint(s.url, "UnifiedReward", max_retries=0, swap=True, template_family="unifiedreward-edit")
    res = judge.compare("image_editing", "make the square blue", green, blue, reference=red)
    assert res.ok and res.winner == 2 and res.votes == [2, 2] and res.agreement == 1.0
    # both orders are in flight at once: tell them apart by what they carry
    fwd, bwd = sorted(s.bodies, key=lambda b: _colours(b)[1] != (0, 128, 0))
    assert _colours(fwd) == [(255, 0, 0), (0, 128, 0), (0, 0, 255)]  # source, edit 1, edit 2, then the text
    assert _colours(bwd) == [(255, 0, 0), (0, 0, 255), (0, 128, 0)]  # swapped: the source stays first
    parts = fwd["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
    assert parts[-1]["text"].endswith("Text instruction - make the square blue\n")

    scored = judge.compare("image_editing", "make the square blue", blue, green, reference=red,
                           template_family="unifiedreward-edit-pair-score")  # fmt: skip
    assert scored.winner == 1 and scored.scores["score"][1] > scored.scores["score"][2]
    assert scored.overall[1] > 0.5 and scored.template_family == "unifiedreward-edit-pair-score"
    point = judge.score("image_editing", "make the square blue", blue, reference=red)
    assert point.ok and point.score == 10.0 and point.overall == {1: 0.4}
    assert _colours(s.bodies[-1]) == [(255, 0, 0), (0, 0, 255)]

    # a reference the task cannot use is an error; an edit without its source too
    bad = judge.compare("image_generation", "a blue square", green, blue, reference=red, template_family="unifiedreward-2.0")
    assert not bad.ok and "takes no reference" in bad.error
    missing = judge.compare("image_editing", "make it blue", green, blue)
    assert not missing.ok and "needs the source image" in missing.error
    with pytest.raises(ValueError, match="unknown template family"):
        judge.compare("image_editing", "x", green, blue, reference=red, template_family="nope")


def test_cli_judges_an_edit_through_an_endpoint(
    server: Callable[[Reply], _Server], tiny_images: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from unireward.cli import main

    red, blue, green = (str(p) for p in tiny_images[:3])
    s = server(_edit_judge)
    common = ["judge", "--base-url", s.url, "--model", "UnifiedReward", "--template-family", "unifiedreward-edit",
              "--task", "image_editing", "--reference", red, "--prompt", "make the square blue"]  # fmt: skip
    assert main([*common, "--candidate", green, "--candidate", blue]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["winner"] == 2 and row["overall"] == {"1": 0.0, "2": 1.0} and row["template_family"] == "unifiedreward-edit"
    assert main([*common, "--candidate", blue, "--pointwise"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["scores"] == {"editing success": {"1": 25.0}, "overediting": {"1": 10.0}} and row["score"] == 10.0
    assert [_colours(b) for b in s.bodies][-1] == [(255, 0, 0), (0, 0, 255)]
    assert main([*common[:5], "--template-family", "unifiedreward-flex", *common[7:], "--candidate", blue, "--pointwise"]) == 2
    assert "no pointwise prompts" in capsys.readouterr().err


def _red_first_only(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
    """A judge that only answers when the red image comes first, scoring the red one 9 and the other 3."""
    first_red = _redness(body["messages"][0]["content"][0]["image_url"]["url"]) > 0
    text = ("<think>\n1. Colour: Image 1 (9/10) red; Image 2 (3/10) not red\nTotal score:\nImage 1: 9=9\nImage 2: 3=3\n"
            "</think>\n<answer>Image 1 is better</answer>") if first_red else "I cannot tell."  # fmt: skip
    return 200, _completion([text] * body.get("n", 1))


def test_swap_reports_texts_in_the_order_of_the_winner(server: Callable[[Reply], _Server], tiny_images: list[Path]) -> None:
    red, blue = tiny_images[0], tiny_images[1]
    judge = Judge.from_endpoint(server(_red_first_only).url, "m", swap=True, max_retries=0)
    res = judge.compare("image_generation", "a red square", blue, red)  # only the swapped order gives a verdict
    assert res.winner == 2 and res.votes == [None, 2] and res.swapped_representative
    assert res.answer == "Image 2 is better" and res.totals == {1: 3.0, 2: 9.0} and res.totals_consistent
    assert res.scores == {"Colour": {1: 3.0, 2: 9.0}} and "Image 2 (9/10) red" in res.think
    assert res.samples == ["I cannot tell."] and res.swapped_samples[0].endswith("<answer>Image 1 is better</answer>")


def test_genai_bench_editing_live_eval_sends_the_source(
    server: Callable[[Reply], _Server], tiny_images: list[Path], tmp_path: Path
) -> None:
    """Real GenAI-Bench image_edition columns; every request carries the source image first."""
    from unireward.eval.runner import EvalConfig, run_eval

    red, blue, green = (p.name for p in tiny_images[:3])
    rows = [{"idx": i, "source_image": red, "left_output_image": left, "right_output_image": right,
             "instruct_prompt": "make the square blue", "source_prompt": "a red square", "target_prompt": "a blue square",
             "vote_type": vote} for i, (left, right, vote) in enumerate([(green, blue, "rightvote"), (blue, green, "leftvote")])]  # fmt: skip
    data = tmp_path / "edit.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = server(_edit_judge)
    judge = Judge.from_endpoint(s.url, "UnifiedReward", max_retries=0, template_family="unifiedreward-edit")
    cfg = EvalConfig("genai-bench", str(data), str(tmp_path / "out"), judge="edit-endpoint",
                     media_root=str(tiny_images[0].parent), order="both")  # fmt: skip
    report = run_eval(cfg, judge=judge)
    assert len(s.bodies) == 4 and all(_colours(b)[0] == (255, 0, 0) and len(_colours(b)) == 3 for b in s.bodies)
    assert report["results"]["accuracy"] == 100.0
