"""Video decoding: ``unireward.media.load_video`` (seeking) against its sequential decode and qwen-vl-utils.

Generated H.264 videos (a moving noise pattern, 30 fps, a keyframe every second, as cameras and
generators write them), cached in ``--cache``. Every measurement runs in a fresh process, so peak
resident memory is its own; the process's memory after its imports is reported too.

Methods, 8 frames unless named otherwise, each resized under the official 147456-pixel cap:

* ``unireward``: ``load_video`` (index the packets, seek to the keyframe before each sample, decode
  forward to it);
* ``unireward-sequential``: the same frames by decoding from the start (the decoder before seeking,
  and the fallback for streams that cannot seek);
* ``qwen-decord-8``: ``qwen_vl_utils.fetch_video`` with ``nframes=8`` on its decord backend;
* ``qwen-decord-fps2``: ``fetch_video`` with its default 2 frames per second, what the official
  inference scripts call;
* ``qwen-pyav-8`` / ``qwen-pyav-fps2``: qwen-vl-utils' PyAV path (``torchvision.io.read_video``: every
  frame decoded and held, then indexed). torchvision removed ``read_video``, so the script runs the
  same steps with PyAV directly. Skipped where the frames held would exceed ``--max-hold-gb``.

    python benchmarks/video_decode.py                      # 720p and 1080p, 10 s to 5 min
    python benchmarks/video_decode.py --videos 720p:10 720p:150 --methods unireward
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench, add_arguments  # noqa: E402

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "360p": (640, 360), "144p": (256, 144)}
METHODS = ["unireward", "unireward-sequential", "qwen-decord-8", "qwen-decord-fps2", "qwen-pyav-8", "qwen-pyav-fps2"]
MAX_PIXELS = 147456  # the official Qwen scripts' cap, also VisionBudget's default
FPS = 30


def video_path(cache: Path, spec: str) -> Path:
    size, seconds = spec.split(":")
    return cache / f"noise_{size}_{seconds}s_{FPS}fps_gop{FPS}.mp4"


def make_video(path: Path, size: str, seconds: float) -> None:
    """H.264 (x264 ultrafast, no B-frames, keyframe every second); the frames scroll a noise texture."""
    import av
    import numpy as np

    w, h = SIZES[size]
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (h // 8, w // 4, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)  # 2w wide
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0"}
        for i in range(int(seconds * FPS)):
            x = (i * 4) % w
            frame = np.ascontiguousarray(tile[:, x : x + w])
            frame[:16, :64] = (i * 7) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.rename(path)


def probe(path: Path) -> dict[str, Any]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return {"width": s.width, "height": s.height, "frames": s.frames, "fps": float(s.average_rate),
                "mb": round(path.stat().st_size / 1e6, 1)}  # fmt: skip


# ---------------------------------------------------------------- worker (one measurement, own process)


def _rss_mb() -> float:
    from _harness import peak_rss_mb

    return peak_rss_mb()


def _pyav_read_all(path: str, ele: dict[str, Any]) -> Any:
    """qwen-vl-utils' torchvision reader, step for step: decode every frame into one TCHW tensor, then index."""
    import av
    import numpy as np
    import torch
    from qwen_vl_utils.vision_process import smart_nframes

    with av.open(path) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        video = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])).permute(0, 3, 1, 2)
    nframes = smart_nframes(ele, total_frames=video.size(0), video_fps=fps)
    idx = torch.linspace(0, video.size(0) - 1, nframes).round().long()
    return video[idx]


def worker(method: str, path: str) -> dict[str, Any]:
    """Import what ``method`` needs, then time one decode of ``path``."""
    if method.startswith("unireward"):
        import unireward.media as media

        budget = media.VisionBudget(max_pixels=MAX_PIXELS)
        if method == "unireward-sequential":
            media._seek_decode = lambda *args: None  # every stream takes the fallback

        def run() -> int:
            return len(media.load_video(path, budget))
    else:
        os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"
        from qwen_vl_utils import vision_process as qv

        ele: dict[str, Any] = {"video": path, "max_pixels": MAX_PIXELS}
        if method.endswith("-8"):
            ele["nframes"] = 8
        if "pyav" in method:
            qv.VIDEO_READER_BACKENDS["decord"] = lambda e: (_pyav_read_all(path, e), {}, 2.0)  # same resize steps after

        def run() -> int:
            out = qv.fetch_video(dict(ele))
            return int((out[0] if isinstance(out, tuple) else out).shape[0])

    base = _rss_mb()
    t0 = time.perf_counter()
    frames = run()
    seconds = time.perf_counter() - t0
    peak = _rss_mb()
    return {"seconds": seconds, "frames": frames, "peak_rss_mb": peak, "rss_after_imports_mb": base}


def measure(method: str, path: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", method, str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} on {path.name} failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def held_gb(method: str, info: dict[str, Any]) -> float:
    """What the reader holds at once: PyAV's read_video every frame, decord's fps=2 batch its samples."""
    frame = info["width"] * info["height"] * 3 / 1e9
    if "pyav" in method:
        return info["frames"] * frame
    if method.endswith("fps2"):
        return min(info["frames"] / info["fps"] * 2, 768) * frame * 2  # numpy batch + torch copy
    return 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--videos", nargs="+", default=["720p:10", "720p:30", "720p:150", "720p:300", "1080p:30", "1080p:300"],
                    help="SIZE:SECONDS, SIZE one of " + ", ".join(SIZES))  # fmt: skip
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "unireward-bench", "videos"))
    ap.add_argument("--max-hold-gb", type=float, default=4.0, help="skip a method that would hold more frames than this")
    ap.add_argument("--sequential-repeats", type=int, default=None, help="runs of the slow sequential decode (default --repeats)")
    ap.add_argument("--prepare", action="store_true", help="only make the videos (encoding is CPU work: not while measuring)")
    add_arguments(ap)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    infos = {}
    for spec in args.videos:
        path = video_path(cache, spec)
        if not path.exists():
            size, seconds = spec.split(":")
            t0 = time.perf_counter()
            make_video(path, size, float(seconds))
            print(f"made {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        infos[spec] = probe(path)
    if args.prepare:
        print(json.dumps(infos, indent=2))
        return 0
    bench = Bench("video_decode", args)
    bench.record("videos", infos)
    missing = [m for m in args.methods if m.startswith("qwen") and not _importable("qwen_vl_utils", "decord")]
    if missing:
        bench.warnings.append("qwen-vl-utils/decord not installed (pip install '.[bench]'): skipped " + ", ".join(missing))
    memory: dict[str, dict[str, float]] = {}
    for spec in args.videos:
        path, info = video_path(cache, spec), infos[spec]
        for method in args.methods:
            label = f"{method} {spec}s"
            if method in missing:
                continue
            if held_gb(method, info) > args.max_hold_gb:
                bench.record(f"skipped {label}", f"would hold ~{held_gb(method, info):.1f} GB of frames (--max-hold-gb)")
                continue
            repeats = args.sequential_repeats if method == "unireward-sequential" and args.sequential_repeats else args.repeats
            runs = [measure(method, path) for _ in range(repeats)]
            bench.add_timing(label, [r["seconds"] for r in runs],
                             note=f"{runs[0]['frames']} frames, peak {max(r['peak_rss_mb'] for r in runs):.0f} MB "
                                  f"(after imports {runs[0]['rss_after_imports_mb']:.0f} MB)")  # fmt: skip
            memory[label] = {"peak": max(r["peak_rss_mb"] for r in runs), "after_imports": runs[0]["rss_after_imports_mb"]}
    bench.record("rss_mb", memory)
    t = bench.timings
    for spec in args.videos:
        ours = t.get(f"unireward {spec}s")
        for other in ("unireward-sequential", "qwen-decord-8"):
            ref = t.get(f"{other} {spec}s")
            if ours and ref and len(ref.runs) == len(ours.runs):
                bench.ratio(f"{other} / unireward, {spec}s", ref, ours)
            elif ours and ref:
                bench.record(f"{other} / unireward, {spec}s (medians)", ref.median / ours.median)
    # The scaling the seeking decoder promises: 8 frames of a long video cost about those of a short one.
    short, long_ = t.get("unireward 720p:10s"), t.get("unireward 720p:150s")
    if short and long_:
        bench.record("unireward 720p 150 s / 10 s (medians)", long_.median / short.median)
    bench.finish()
    return 0


def _importable(*names: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(n) is not None for n in names)


if __name__ == "__main__":
    sys.exit(main())
