"""``--engine ray`` on a simulated two-node Ray cluster (``ray.cluster_utils.Cluster``: a head with
no CPUs and two nodes declaring one GPU each, judges at one GPU, so one judge per node).

Ray binds the machine's external address, so these tests run inside a network namespace of their
own holding only loopback: the one test collected outside re-runs this file under ``unshare -n``.
Checked: every row once, both nodes did work, rows equal the local engine's (greedy); a node
removed mid-job and the job still completes with every row once; the driver killed and rerun
resumes with the same rows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from unireward.cli import main

INSIDE = os.environ.get("UNIREWARD_TEST_NETNS") == "1"
REPO = Path(__file__).resolve().parents[1]
PAIRS = 16
NEW_TOKENS = 6


def test_ray_tests_run_in_their_own_network_namespace() -> None:
    """This file again, under ``unshare -n`` with only ``lo`` up, within a hard timeout."""
    if INSIDE:
        pytest.skip("already inside the namespace")
    pytest.importorskip("ray")
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unshare -n (root or user namespaces) to keep Ray's traffic on loopback")
    env = {**os.environ, "UNIREWARD_TEST_NETNS": "1", "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    inner = f"ip link set lo up && exec timeout -s KILL 420 {sys.executable} -m pytest -q -x -p no:cacheprovider {__file__}"
    proc = subprocess.run(["unshare", "-n", "sh", "-c", inner], env=env, cwd=REPO, capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "5 passed" in proc.stdout, proc.stdout[-3000:]


inside = pytest.mark.skipif(not INSIDE, reason="runs inside its own network namespace (see the test above)")


def _photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:512, 0:512]
    base = np.stack([(x + 40 * seed) % 256, (y * 0.5 + 20 * seed) % 256, (x + y) % 256], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model with wide random weights (answers depend on the images) and a file of 512² JPEG pairs."""
    import torch

    from unireward.judge import TransformersBackend
    from unireward.models import get_family

    root = tmp_path_factory.mktemp("ray")
    tiny = get_family("qwen2_5_vl").build_tiny(root / "tiny")
    model = root / "wide"
    shutil.copytree(tiny, model)
    local = TransformersBackend.load(str(tiny))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in local.model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3, generator=gen)
    local.model.save_pretrained(model)
    images = []
    for i in range(8):
        images.append(root / f"img{i}.jpg")
        _photo(i).save(images[-1], quality=90)
    pairs = root / "pairs.jsonl"
    with pairs.open("w") as f:
        for i in range(PAIRS):
            f.write(json.dumps({"id": f"p{i:02d}", "task": "image_generation", "prompt": f"a lighthouse, take {i}",
                                "candidates": [str(images[i % 8]), str(images[(3 * i + 1) % 8])],
                                "label": 1 + i % 2}) + "\n")  # fmt: skip
    return {"root": root, "model": model, "pairs": pairs}


def _args(work: dict[str, Path], out: Path) -> list[str]:
    return ["judge", "--model", str(work["model"]), "--input", str(work["pairs"]), "--output", str(out),
            "--max-new-tokens", str(NEW_TOKENS), "--chunk-size", "2", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [c.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]  # logical CPUs: the read task needs room
    c.wait_for_nodes()
    c.worker_nodes_list = nodes
    yield c
    c.shutdown()


def _ray(address: str) -> list[str]:
    return ["--engine", "ray", "--ray-address", address, "--num-workers", "2", "--gpus-per-worker", "1",
            "--cpus-per-worker", "0.5"]  # fmt: skip


@pytest.fixture(scope="module")
def local_rows(work: dict[str, Path]) -> list[dict[str, Any]]:
    out = work["root"] / "local.jsonl"
    assert main(_args(work, out)) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _summary(stdout: str) -> dict[str, Any]:
    """The run's summary line (Ray may print its workers' log lines on the same stream)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{") and '"total"' in line:
            return json.loads(line)
    raise AssertionError(f"no summary line in {stdout[-2000:]!r}")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _wait_rows(path: Path, n: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{path}: fewer than {n} rows after {timeout}s")


@inside
def test_two_nodes_equal_the_local_engine(work: dict[str, Path], cluster: Any, local_rows: list[dict[str, Any]],
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = work["root"] / "ray.jsonl"
    capsys.readouterr()
    assert main(_args(work, out) + _ray(cluster.address)) == 0
    summary = _summary(capsys.readouterr().out)
    rows = _rows(out)
    assert [r["key"] for r in rows] == [f"p{i:02d}" for i in range(PAIRS)]  # every row once, in input order
    assert rows == local_rows  # greedy: the same texts, verdicts and scores as in this process
    per_node = summary["workers"]["per_node"]
    assert len(per_node) == 2 and all(n > 0 for n in per_node.values()) and sum(per_node.values()) == PAIRS
    assert len({r["text"] for r in rows}) > 1  # the answers depend on the pair: equality says something


@inside
def test_driver_killed_then_rerun_resumes(work: dict[str, Path], cluster: Any, local_rows: list[dict[str, Any]],
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = work["root"] / "killed.jsonl"
    cmd = [sys.executable, "-m", "unireward.cli", *_args(work, out), *_ray(cluster.address)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_rows(out, 4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    written = len(_rows(out))
    assert 4 <= written < PAIRS
    capsys.readouterr()
    assert main(_args(work, out) + _ray(cluster.address)) == 0
    summary = _summary(capsys.readouterr().out)
    assert summary["skipped"] == written and summary["judged"] == PAIRS - written
    assert _rows(out) == local_rows  # each row once, the same rows as an uninterrupted run


@inside
def test_sample_on_two_nodes_equals_the_local_engine(work: dict[str, Path], cluster: Any) -> None:
    """Rejection sampling (k=2, temperature 1): each fixed chunk has its own seed, so Ray draws what
    this process draws."""
    def run(out: Path, *extra: str) -> None:
        rc = main(["sample", str(work["pairs"]), "--model", str(work["model"]), "--out", str(out), "-k", "2",
                   "--max-new-tokens", "4", "--chunk-size", "4", "--limit", "8", *extra])  # fmt: skip
        assert rc == 0

    local, ray_out = work["root"] / "rs-local", work["root"] / "rs-ray"
    run(local)
    run(ray_out, *_ray(cluster.address))
    local_rows, ray_rows = _rows(local / "samples.jsonl"), _rows(ray_out / "samples.jsonl")
    assert [r["id"] for r in ray_rows] == [f"p{i:02d}" for i in range(8)] and ray_rows == local_rows
    assert not any(r.get("error") for r in ray_rows)
    report = json.loads((ray_out / "sample_report.json").read_text())
    assert sum(report["workers"]["per_node"].values()) == 8 and len(report["workers"]["per_node"]) == 2
    for name in ("rs_sft.jsonl", "grpo.jsonl"):
        assert (ray_out / name).read_text() == (local / name).read_text()


@inside
def test_eval_on_two_nodes_equals_the_local_engine(work: dict[str, Path], cluster: Any) -> None:
    """``eval pairs`` with a model judge, both orders: the same predictions and the same report."""
    def run(out: Path, *extra: str) -> dict[str, Any]:
        rc = main(["eval", "pairs", "--data", str(work["pairs"]), "--judge", str(work["model"]), "--order", "both",
                   "--max-new-tokens", str(NEW_TOKENS), "--batch-size", "4", "--limit", "8", "--out", str(out),
                   "--no-progress", "--json", *extra])  # fmt: skip
        assert rc == 0
        return json.loads((out / "report.json").read_text())

    local = run(work["root"] / "ev-local")
    remote = run(work["root"] / "ev-ray", *_ray(cluster.address))
    assert _rows(work["root"] / "ev-ray" / "predictions.jsonl") == _rows(work["root"] / "ev-local" / "predictions.jsonl")
    assert len(_rows(work["root"] / "ev-ray" / "predictions.jsonl")) == 16  # 8 pairs in both orders, once each
    assert remote["results"] == local["results"]


@inside
def test_node_removed_mid_job_completes_every_row_once(work: dict[str, Path], cluster: Any,
                                                       local_rows: list[dict[str, Any]]) -> None:  # fmt: skip
    out = work["root"] / "node-lost.jsonl"
    rc: list[int] = []
    runner = threading.Thread(target=lambda: rc.append(main(_args(work, out) + _ray(cluster.address))), daemon=True)
    runner.start()
    _wait_rows(out, 4)
    cluster.remove_node(cluster.worker_nodes_list[1])  # its judge dies with it; its chunk is run again
    runner.join(timeout=300)
    assert rc == [0]
    rows = _rows(out)
    assert [r["key"] for r in rows] == [f"p{i:02d}" for i in range(PAIRS)]
    assert rows == local_rows
