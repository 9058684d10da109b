"""The registry of released judges: its entries name real families and protocols, the README table
is made from it, and ``unireward judge --model ID`` picks the checkpoint's protocol by itself."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from unireward.cli import main
from unireward.models import list_families as model_families
from unireward.models.zoo import RELEASED_JUDGES, ReleasedJudge, find_released, markdown_table
from unireward.protocol.templates import get_family
from unireward.protocol.templates import list_families as template_families

README = Path(__file__).resolve().parents[1] / "README.md"


def test_entries_name_known_families_and_protocols() -> None:
    ids = [j.id for j in RELEASED_JUDGES]
    assert len(ids) == len(set(ids))
    for j in RELEASED_JUDGES:
        assert j.model_family in model_families(), j.id
        assert set(j.template_families) <= set(template_families()), j.id
        assert find_released(j.id) is j and find_released(j.id.upper()) is j
    # the two LLaVA-NeXT checkpoints, and only they, need converting
    assert sorted(j.id for j in RELEASED_JUDGES if j.convert) == [
        "CodeGoat24/UnifiedReward-7b", "CodeGoat24/UnifiedReward-Think-7b"]  # fmt: skip


def test_bad_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="owner/name"):
        ReleasedJudge("UnifiedReward-7b", "s", "qwen2_5_vl", None)
    with pytest.raises(ValueError, match="conversion"):
        ReleasedJudge("a/b", "s", "qwen2_5_vl", None, convert="gguf")


def test_readme_table_is_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- released-judges:[^\n]*-->\n(.*?)\n<!-- /released-judges -->", text, re.DOTALL)
    assert m, "README lost its released-judges block"
    assert m.group(1) == markdown_table(), "README table differs: paste `unireward zoo --markdown`"


def test_zoo_command_lists_every_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [j.id for j in RELEASED_JUDGES]
    edit7 = next(r for r in rows if r["id"] == "CodeGoat24/UnifiedReward-Edit-qwen-7b")
    assert edit7["template_family"] == "unifiedreward-edit"
    assert edit7["other_template_families"] == ["unifiedreward-edit-pair-score"]
    assert main(["zoo"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 1 + len(RELEASED_JUDGES)


class _Chat:
    """A chat-completions server on 127.0.0.1 that records each request's text and answers ``reply``."""

    def __init__(self, reply: str):
        self.texts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content = body["messages"][-1]["content"]
                outer.texts.append("".join(p.get("text", "") for p in content if isinstance(p, dict)))
                data = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def chat() -> Iterator[_Chat]:
    server = _Chat("Image 1 is better")
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def pair(tmp_path: Path) -> list[str]:
    paths = []
    for i, colour in enumerate(("red", "blue")):
        p = tmp_path / f"{i}.jpg"
        Image.new("RGB", (512, 512), colour).save(p, quality=90)
        paths.append(str(p))
    return paths


def _judge(chat: _Chat, pair: list[str], capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    rc = main(["judge", "--model", "CodeGoat24/UnifiedReward-2.0-qwen-7b", "--base-url", chat.url,
               "--task", "image_generation", "--prompt", "a red cube", "--candidate", pair[0], "--candidate", pair[1],
               *extra])  # fmt: skip
    assert rc == 0
    return json.loads(capsys.readouterr().out)


def test_judge_picks_the_checkpoints_protocol(chat: _Chat, pair: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    row = _judge(chat, pair, capsys)
    assert row["template_family"] == "unifiedreward-2.0"
    assert row["status"] == "ok" and row["winner"] == 1  # a 2.0 free-text verdict, read by the 2.0 parser
    want = get_family("unifiedreward-2.0").text("image_generation").replace("{prompt}", "a red cube")
    assert chat.texts == [want]


def test_explicit_template_family_wins(chat: _Chat, pair: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    row = _judge(chat, pair, capsys, "--template-family", "unifiedreward-think")
    assert row["template_family"] == "unifiedreward-think"
    want = get_family("unifiedreward-think").text("image_generation").replace("{prompt}", "a red cube")
    assert chat.texts == [want] and "<think>" in want


def test_python_api_picks_the_protocol_too(chat: _Chat, tiny_model: Path, tmp_path: Path) -> None:
    from unireward.judge import Judge

    j = Judge.from_endpoint(chat.url, "CodeGoat24/UnifiedReward-2.0-qwen-7b")
    assert (j.options.template_family, j.options.pointwise_family) == ("unifiedreward-2.0", "unifiedreward-2.0")
    j = Judge.from_endpoint(chat.url, "CodeGoat24/UnifiedReward-2.0-qwen-7b", template_family="unifiedreward-think")
    assert (j.options.template_family, j.options.pointwise_family) == ("unifiedreward-think", None)
    # a local folder named after a released checkpoint (a tiny random model standing in for it)
    local = tmp_path / "UnifiedReward-Edit-qwen-7b"
    local.symlink_to(tiny_model, target_is_directory=True)
    j = Judge.from_pretrained(local)
    assert (j.options.template_family, j.options.pointwise_family) == ("unifiedreward-edit", "unifiedreward-edit")
    assert Judge.from_pretrained(tiny_model).options.template_family is None
