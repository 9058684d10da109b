"""The synthetic task, the scripted teacher and the distillation stage (with a misbehaving server)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from unireward.data.schema import read_pairs
from unireward.demo.synthetic import SyntheticConfig, generate, read_colour
from unireward.demo.teacher import BackgroundServer, ScriptedTeacher, create_teacher_app
from unireward.judge.openai_http import encode_messages
from unireward.judge.request import load_pair_media, pair_messages
from unireward.media import VisionBudget
from unireward.protocol import Task, parse_judgment
from unireward.protocol.tasks import THINK_TASKS
from unireward.train.distill import DistillConfig, distill


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, SyntheticConfig(n_per_task={t.value: 6 for t in THINK_TASKS}, seed=3), "train")
    return root


def test_synthetic_media_show_what_the_labels_say(synthetic: Path) -> None:
    pairs = read_pairs(synthetic / "train.jsonl")
    assert {p.task for p in pairs} == set(THINK_TASKS)
    assert {p.label for p in pairs} == {1, 2}
    for p in pairs:
        media = load_pair_media(p, synthetic, VisionBudget())
        truth = p.meta["truth"]
        if p.task is Task.IMAGE_GENERATION:
            seen = [read_colour(m) for m in media]
            assert seen == truth["shows"] and seen[p.label - 1] == truth["asked"]
        elif p.task is Task.VIDEO_GENERATION:  # real mp4s, decoded by PyAV
            seen = [[read_colour(f) for f in v] for v in media]
            assert [[s[0], s[-1]] for s in seen] == truth["shows"]
        elif p.task is Task.IMAGE_UNDERSTANDING:
            assert read_colour(media[0]) == truth["shows"]
        else:
            assert read_colour(media[0][-1]) == truth["shows"][1]


@pytest.mark.parametrize("family", ["unifiedreward-think", "unireward-compact"])
def test_scripted_teacher_reads_pixels_and_follows_the_contract(synthetic: Path, family: str) -> None:
    pairs = read_pairs(synthetic / "train.jsonl")
    right, wrong = ScriptedTeacher(accuracy=1.0), ScriptedTeacher(accuracy=0.0)
    for p in pairs:
        msgs = encode_messages(pair_messages(p, load_pair_media(p, synthetic, VisionBudget()), family, video_as="frames"))
        good = parse_judgment(right.answer(msgs), p.task, strict=True)
        bad = parse_judgment(wrong.answer(msgs), p.task, strict=True)
        assert good.ok and bad.ok, (good.reason, bad.reason)
        assert good.winner == p.label and bad.winner == 3 - p.label
        assert good.totals_consistent and bad.totals_consistent  # wrong, but fluent and self-consistent


class _FlakyHandler(BaseHTTPRequestHandler):
    """Answers like the scripted teacher, after failing in every way a real endpoint does."""

    teacher = ScriptedTeacher(accuracy=0.75, seed=1)
    plan: list[str] = []
    always_fail: set[str] = set()
    served: list[str] = []
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "".join(p.get("text", "") for m in body["messages"] for p in m["content"] if isinstance(p, dict))
        with self.lock:
            action = self.plan.pop(0) if self.plan else "ok"
            if any(key in text for key in self.always_fail):
                action = "500"
            self.served.append(action)
        if action == "timeout":
            time.sleep(1.5)
            action = "ok"
        if action in ("429", "500"):
            self._send(int(action), b'{"error": {"message": "try again"}}')
        elif action == "garbage":
            self._send(200, b"<html>not json</html>")
        else:
            answer = self.teacher.answer(body["messages"])
            payload = {"id": "x", "object": "chat.completion", "created": 0, "model": "t",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}  # fmt: skip
            self._send(200, json.dumps(payload).encode())

    def _send(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_distill_survives_a_failing_teacher_and_resumes_without_reasking(tmp_path: Path) -> None:
    root = tmp_path / "syn"
    pairs = generate(root, SyntheticConfig(n_per_task={"image_generation": 24}, seed=5), "cold")
    doomed = pairs[0].prompt  # every request with this caption fails, however often it is retried
    _FlakyHandler.plan = ["429", "500", "garbage", "timeout", "500", "429"]
    _FlakyHandler.always_fail = {f"[{doomed}]"}
    _FlakyHandler.served = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = DistillConfig(pairs=str(root / "cold.jsonl"), out_dir=str(tmp_path / "out"),
                        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", media_root=str(root),
                        concurrency=4, timeout=1.0, max_retries=3, backoff=0.01)  # fmt: skip
    try:
        first = distill(cfg)
        n_doomed = sum(p.prompt == doomed for p in pairs)
        assert first.failed == n_doomed
        assert first.kept + first.wrong_verdict + first.bad_format + first.failed == len(pairs)
        assert first.wrong_verdict > 0 and first.kept > 0  # the lying teacher is filtered, not trusted
        kept = [json.loads(x) for x in (tmp_path / "out" / "cold_start.jsonl").read_text().splitlines()]
        assert all(parse_judgment(r["completion"], "image_generation", strict=True).winner == r["pair"]["label"] for r in kept)
        assert first.prompt_tokens == 10 * (len(pairs) - n_doomed)

        # Rerun with the teacher healthy: only the failed pairs are asked again.
        _FlakyHandler.always_fail = set()
        _FlakyHandler.served = []
        second = distill(cfg)
        assert len(_FlakyHandler.served) == n_doomed
        assert second.failed == 0 and second.cached == len(pairs) - n_doomed
        assert second.kept + second.wrong_verdict == len(pairs)
        third_before = len(_FlakyHandler.served)
        distill(cfg)
        assert len(_FlakyHandler.served) == third_before  # nothing left to ask
    finally:
        server.shutdown()


def test_teacher_server_answers_the_openai_client(synthetic: Path) -> None:
    from openai import OpenAI

    pair = next(p for p in read_pairs(synthetic / "train.jsonl") if p.task is Task.VIDEO_GENERATION)
    msgs = encode_messages(pair_messages(pair, load_pair_media(pair, synthetic, VisionBudget()), video_as="frames"))
    with BackgroundServer(create_teacher_app(ScriptedTeacher(1.0))) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        out = client.chat.completions.create(model="scripted-teacher", messages=msgs)
    j = parse_judgment(out.choices[0].message.content, Task.VIDEO_GENERATION, strict=True)
    assert j.ok and j.winner == pair.label


def test_brief_judgment_describes_without_reasoning(synthetic: Path) -> None:
    from unireward.demo.teacher import brief_judgment

    for p in read_pairs(synthetic / "train.jsonl"):
        text = brief_judgment(p, str(synthetic), VisionBudget())
        assert "<think>" not in text and "match" not in text
        assert parse_judgment(text, p.task).winner == p.label  # the lenient parser reads a bare verdict


def test_distill_builds_requests_as_it_sends_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Media are loaded and encoded per request, with at most twice `concurrency` built and unanswered."""
    import unireward.train.distill as distill_module

    root = tmp_path / "syn"
    generate(root, SyntheticConfig(n_per_task={"image_generation": 30}, seed=2), "cold")
    cache = tmp_path / "out" / "teacher_cache.jsonl"
    ahead: list[int] = []
    real = distill_module.load_pair_media

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        answered = len(cache.read_text().splitlines()) if cache.exists() else 0
        ahead.append(len(ahead) - answered)  # requests built before this one and not yet answered
        return real(*args, **kwargs)

    monkeypatch.setattr(distill_module, "load_pair_media", counting)
    with BackgroundServer(create_teacher_app(ScriptedTeacher(0.9, seed=0))) as srv:
        report = distill(DistillConfig(pairs=str(root / "cold.jsonl"), out_dir=str(tmp_path / "out"), base_url=srv.base_url,
                                       media_root=str(root), concurrency=2))  # fmt: skip
    assert report.asked == 30 and len(ahead) == 30
    assert max(ahead) <= 2 * 2 + 1 and ahead[1] == 0  # the first request is answered before the next is built


def test_teacher_draws_from_the_pair_id_so_concurrency_does_not_change_the_data(tmp_path: Path) -> None:
    """The same seed gives the same distilled set at concurrency 1 and 8: the teacher's right/wrong
    draw is a hash of (seed, pair id), sent as the request id, not the order requests arrive in."""
    from unireward.demo.teacher import draws_correct

    root = tmp_path / "syn"
    pairs = generate(root, SyntheticConfig(n_per_task={t.value: 10 for t in THINK_TASKS}, seed=4), "cold")
    outputs = {}
    with BackgroundServer(create_teacher_app(ScriptedTeacher(0.7, seed=3))) as srv:
        for conc in (1, 8):
            out = tmp_path / f"c{conc}"
            report = distill(DistillConfig(pairs=str(root / "cold.jsonl"), out_dir=str(out), base_url=srv.base_url,
                                           media_root=str(root), concurrency=conc, tasks=("all",)))  # fmt: skip
            cache = {r["id"]: r["text"] for r in map(json.loads, (out / "teacher_cache.jsonl").read_text().splitlines())}
            outputs[conc] = ((out / "cold_start.jsonl").read_bytes(), cache, report.wrong_verdict)
    assert outputs[1][0] == outputs[8][0]  # byte for byte
    assert outputs[1][1] == outputs[8][1]
    wrong = sum(not draws_correct(3, p.id, 0.7) for p in pairs)
    assert 0 < wrong < len(pairs) and outputs[1][2] == outputs[8][2] == wrong
