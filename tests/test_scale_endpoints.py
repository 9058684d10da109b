"""Several OpenAI-compatible endpoints behind one client (``unireward.judge.endpoints``), against
real HTTP servers on 127.0.0.1: least-in-flight spread, failover, health checks, the CLI summary."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from unireward.cli import main
from unireward.judge import ChatError, Judge
from unireward.judge.endpoints import EndpointPool, normalize_urls

Reply = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def _completion(text: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}  # fmt: skip


def echo(delay: float = 0.0, tag: str = "") -> Reply:
    def reply(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        time.sleep(delay)
        parts = body["messages"][0]["content"]
        text = parts if isinstance(parts, str) else next(p["text"] for p in parts if p["type"] == "text")
        return 200, _completion(f"{tag}{text[-12:]}<answer>Image 1 is better</answer>")

    return reply


def failing(status: int) -> Reply:
    return lambda body: (status, {"error": {"message": f"status {status}", "type": "server_error", "code": None}})


class Server:
    """A chat-completions server (``GET /v1/models`` for health checks); ``reply`` decides each answer."""

    def __init__(self, reply: Reply, port: int = 0):
        self.reply = reply
        self.posts = 0
        self.gets = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self.healthy = True
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.gets += 1
                self._send(200 if outer.healthy else 503, {"object": "list", "data": [{"id": "m"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.posts += 1
                    outer._in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer._in_flight)
                try:
                    status, payload = outer.reply(body)
                finally:
                    with lock:
                        outer._in_flight -= 1
                self._send(status, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(reply: Reply, port: int = 0) -> Server:
        made.append(Server(reply, port))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


def test_urls_are_normalized_and_checked() -> None:
    assert normalize_urls(["http://a/v1", "http://b/v1/,http://c/v1"]) == ["http://a/v1", "http://b/v1", "http://c/v1"]
    with pytest.raises(ValueError, match="http://"):
        normalize_urls(["a:8000/v1"])
    with pytest.raises(ValueError, match="at least one"):
        normalize_urls([" , "])


def test_least_in_flight_spreads_load_and_keeps_order(servers: Callable[..., Server]) -> None:
    fast, slow = servers(echo(0.01, "fast:")), servers(echo(0.2, "slow:"))
    pool = EndpointPool([fast.url, slow.url], "m", concurrency=4, backoff=0.01)
    out = pool.chat_many([_user(f"item {i:02d}") for i in range(24)], max_tokens=4)
    assert [o.text.split(":", 1)[1][:7] for o in out] == [f"item {i:02d}" for i in range(24)]
    # both endpoints worked, the slow one had fewer requests (it keeps them in flight longer)
    assert fast.posts + slow.posts == 24 and slow.posts >= 1 and fast.posts > slow.posts
    assert fast.max_in_flight <= 4 and slow.max_in_flight <= 4
    counts = {s["url"]: s for s in pool.summary()}
    assert counts[fast.url]["ok"] == fast.posts and counts[slow.url]["ok"] == slow.posts
    assert all(s["failed"] == 0 and s["in_flight"] == 0 and s["healthy"] for s in counts.values())
    pool.close()


def test_a_failing_endpoints_requests_are_answered_by_another(servers: Callable[..., Server]) -> None:
    good, bad = servers(echo()), servers(failing(503))
    pool = EndpointPool([bad.url, good.url], "m", concurrency=2, backoff=0.01, fail_threshold=2)
    out = pool.chat_many([_user(f"x{i}") for i in range(10)])
    assert not any(isinstance(o, ChatError) for o in out)
    s = {e["url"]: e for e in pool.summary()}
    assert s[good.url]["ok"] == 10 and good.posts == 10
    # the bad one is out after two failures in a row; its requests were rerouted, none failed for good
    assert s[bad.url]["ok"] == 0 and s[bad.url]["rerouted"] == bad.posts >= 2 and s[bad.url]["failed"] == 0
    assert not s[bad.url]["healthy"] and s[bad.url]["taken_out"] == 1 and "503" in s[bad.url]["last_error"]
    pool.close()


def test_a_refused_request_is_final_and_not_rerouted(servers: Callable[..., Server]) -> None:
    a, b = servers(failing(400)), servers(failing(400))
    pool = EndpointPool([a.url, b.url], "m", max_retries=3, backoff=0.01)
    [out] = pool.chat_many([_user("bad")])
    assert isinstance(out, ChatError) and out.status == 400 and out.attempts == 1
    assert a.posts + b.posts == 1
    pool.close()


def test_every_endpoint_failing_gives_a_bounded_error(servers: Callable[..., Server]) -> None:
    a = servers(failing(500))
    pool = EndpointPool([a.url, _dead_url()], "m", max_retries=3, backoff=0.01)
    [out] = pool.chat_many([_user("x")])
    assert isinstance(out, ChatError) and out.attempts == 4 and "2 endpoint(s)" in str(out)
    pool.close()


def test_dead_endpoint_is_taken_out_and_put_back_by_the_health_check(servers: Callable[..., Server]) -> None:
    live = servers(echo())
    dead = _dead_url()
    pool = EndpointPool([dead, live.url], "m", concurrency=2, backoff=0.01, health_interval=0.2)
    out = pool.chat_many([_user(f"x{i}") for i in range(6)])
    assert not any(isinstance(o, ChatError) for o in out) and live.posts == 6
    s = {e["url"]: e for e in pool.summary()}
    # a refused connection takes it out: only the requests started before the first refusal went there
    assert not s[dead]["healthy"] and s[dead]["taken_out"] == 1 and 1 <= s[dead]["requests"] <= 2
    assert s[dead]["rerouted"] == s[dead]["requests"] and s[dead]["failed"] == 0
    # the endpoint comes up on that port: the background check puts it back, and it gets work again
    port = int(dead.rsplit(":", 1)[1].split("/")[0])
    revived = servers(echo(0.05), port=port)
    deadline = time.monotonic() + 30
    while not pool.summary()[0]["healthy"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.summary()[0]["healthy"] and pool.summary()[0]["put_back"] == 1
    pool.chat_many([_user(f"y{i}") for i in range(6)])
    assert revived.posts >= 1
    # and a failing health check takes a live endpoint out without any request
    revived.healthy = False
    assert pool.check_health() == [False, True] and not pool.summary()[0]["healthy"]
    pool.close()


def test_judge_file_over_two_endpoints_counts_each(servers: Callable[..., Server], tiny_images: list[Path],
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    a, b = servers(echo(0.02)), servers(echo(0.02))
    pairs = tmp_path / "pairs.jsonl"
    with pairs.open("w") as f:
        for i in range(12):
            f.write(json.dumps({"id": f"p{i}", "task": "image_generation", "prompt": f"prompt {i}",
                                "candidates": [str(tiny_images[i % 4]), str(tiny_images[(i + 1) % 4])],
                                "label": 1}) + "\n")  # fmt: skip
    out = tmp_path / "judged.jsonl"
    rc = main(["judge", "--model", "m", "--base-url", a.url, "--base-url", b.url, "--input", str(pairs),
               "--output", str(out), "--concurrency", "2", "--no-progress"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and summary["judged"] == 12 and summary["errors"] == 0
    per = {e["url"]: e["ok"] for e in summary["endpoints"]}
    assert per == {a.url: a.posts, b.url: b.posts} and a.posts >= 1 and b.posts >= 1 and a.posts + b.posts == 12
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(12)] and all(r["winner"] == 1 for r in rows)


def test_from_endpoint_with_one_url_is_the_plain_client(servers: Callable[..., Server]) -> None:
    from unireward.judge import ChatClient

    s = servers(echo())
    assert isinstance(Judge.from_endpoint(s.url, "m").backend.client, ChatClient)
    assert isinstance(Judge.from_endpoint([s.url, _dead_url()], "m").backend.client, EndpointPool)


def _k_choices(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``n`` sampled verdicts: 'Image 1' for even choice indices, 'Image 2' for odd ones."""
    n = body.get("n", 1)
    texts = [f"<think>look {i}</think><answer>Image {1 if i % 2 == 0 else 2} is better</answer>" for i in range(n)]
    return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                 "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                             for i, t in enumerate(texts)],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 2 * n, "total_tokens": 3 + 2 * n}}  # fmt: skip


def test_sample_over_two_endpoints(servers: Callable[..., Server], tiny_images: list[Path], tmp_path: Path) -> None:
    a, b = servers(_k_choices), servers(_k_choices)
    pairs = tmp_path / "pairs.jsonl"
    with pairs.open("w") as f:
        for i in range(8):
            f.write(json.dumps({"id": f"p{i}", "task": "image_generation", "prompt": f"prompt {i}",
                                "candidates": [str(tiny_images[i % 4]), str(tiny_images[(i + 1) % 4])],
                                "label": 1 + i % 2}) + "\n")  # fmt: skip
    rc = main(["sample", str(pairs), "--model", "m", "--base-url", a.url, "--base-url", b.url, "--out", str(tmp_path / "rs"),
               "-k", "3", "--chunk-size", "2", "--concurrency", "1", "--max-new-tokens", "8"])  # fmt: skip
    assert rc == 0
    stats = json.loads((tmp_path / "rs" / "sample_report.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "rs" / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(8)] and not any(r.get("error") for r in rows)
    # k=3 samples per pair, two of them "Image 1": label-1 pairs are judged right by the majority, label-2 wrong
    per = {e["url"]: e["ok"] for e in stats["endpoints"]}
    assert per == {a.url: a.posts, b.url: b.posts} and a.posts >= 1 and b.posts >= 1 and a.posts + b.posts == 8
    sft = [json.loads(line) for line in (tmp_path / "rs" / "rs_sft.jsonl").read_text().splitlines()]
    grpo = [json.loads(line) for line in (tmp_path / "rs" / "grpo.jsonl").read_text().splitlines()]
    assert len(sft) == 4 and len(grpo) == 4


def test_gateway_health_from_the_start_and_chat_forwarding(servers: Callable[..., Server]) -> None:
    """The gateway (no model) over a live and a dead upstream: /health knows before any request,
    chat completions are checked here and forwarded there, and an upstream's refusal keeps its status."""
    import httpx
    from serve_util import data_url, running

    from unireward.serve import ServerLimits
    from unireward.serve.gateway import create_gateway

    live, dead = servers(echo()), _dead_url()
    app = create_gateway([live.url, dead], ServerLimits(max_new_tokens=32), health_interval=0.2)
    with running(app) as gw:
        h = httpx.get(gw + "/health").json()
        assert h["status"] == "ok" and [u["healthy"] for u in h["upstreams"]] == [True, False]
        from PIL import Image

        content = [{"type": "image_url", "image_url": {"url": data_url(Image.new("RGB", (64, 64), "red"))}},
                   {"type": "text", "text": "which is better?"}]  # fmt: skip
        body = {"model": "UnifiedReward", "messages": [{"role": "user", "content": content}], "max_tokens": 4096}
        r = httpx.post(gw + "/v1/chat/completions", json=body, timeout=30)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["choices"][0]["message"]["content"].endswith("<answer>Image 1 is better</answer>")
        assert out["max_tokens"] == 32 and r.headers["X-Max-Tokens-Clamped"] == "32" and live.posts == 1
        # checked here, never sent: a bad image and an unknown model
        bad = {**body, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
        assert httpx.post(gw + "/v1/chat/completions", json=bad, timeout=30).status_code == 400
        assert httpx.post(gw + "/v1/chat/completions", json={**body, "model": "other"}, timeout=30).status_code == 404
        assert live.posts == 1
        live.reply = failing(400)
        r = httpx.post(gw + "/v1/chat/completions", json=body, timeout=30)
        assert r.status_code == 400 and "upstream refused" in r.json()["error"]["message"]
        assert 'unireward_upstream_healthy{upstream="' + dead + '"} 0' in httpx.get(gw + "/metrics").text
    app.state.gateway.pool.close()
