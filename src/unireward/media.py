"""Images and videos in, PIL frames out, all under one :class:`VisionBudget`.

Every stage (judging, distillation, SFT, sampling, GRPO, evaluation, serving) loads media through
here, so a checkpoint sees pixels at training time exactly as it will at judging time.
Any problem with a file raises :class:`MediaError` naming it, never a bare decoder traceback.
"""

from __future__ import annotations

import bisect
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

MediaSource = str | os.PathLike[str] | bytes | Image.Image


class MediaError(Exception):
    """A media item that cannot be used; ``source`` names the file (or ``<bytes>``/``<PIL>``)."""

    def __init__(self, source: Any, reason: str):
        self.source = _describe(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return "<PIL image>"
    return f"<{type(source).__name__}>"


@dataclass(frozen=True)
class VisionBudget:
    """How many pixels and frames a request may use.

    Defaults follow the official UnifiedReward-Think Qwen scripts (``max_pixels`` 147456 = 384x384,
    8 uniformly sampled frames per video). ``factor`` is the side multiple the vision encoder needs
    (28 for Qwen2.5-VL: 14-px patches merged 2x2; 32 for Qwen3-VL).
    """

    min_pixels: int = 3136
    max_pixels: int = 147456
    frames: int = 8
    fps: float | None = None
    max_total_pixels: int | None = None
    factor: int = 28
    max_source_pixels: int = 8192 * 8192
    max_file_bytes: int = 1 << 30
    max_video_frames: int = 100_000

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError("factor must be >= 1")
        if not (0 < self.min_pixels <= self.max_pixels):
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")
        if self.min_pixels < self.factor * self.factor:
            raise ValueError(f"min_pixels must be at least factor**2 = {self.factor**2}")
        if self.frames < 1:
            raise ValueError("frames must be >= 1")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps must be positive")
        if self.max_total_pixels is not None and self.max_total_pixels < self.min_pixels:
            raise ValueError("max_total_pixels must be >= min_pixels")

    def per_image_max(self, n_images: int) -> int:
        """Pixel cap for each of ``n_images`` images sharing one request.

        >>> VisionBudget(max_pixels=100_000, max_total_pixels=160_000).per_image_max(4)
        40000
        """
        cap = self.max_pixels
        if self.max_total_pixels is not None and n_images > 0:
            cap = min(cap, self.max_total_pixels // n_images)
        return max(cap, self.min_pixels)


def fit_size(width: int, height: int, min_pixels: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """Size keeping the aspect ratio, sides multiples of ``factor``, area within [min, max].

    >>> fit_size(1920, 1080, 3136, 147456)
    (504, 280)
    >>> fit_size(10, 10, 3136, 147456)
    (56, 56)

    ``max_pixels`` wins over ``min_pixels`` and the aspect ratio: an extreme panorama is squeezed
    rather than allowed over the budget.

    >>> w, h = fit_size(100_000, 10, 3136, 147456); (w * h <= 147456, w % 28, h % 28)
    (True, 0, 0)
    """
    if width <= 0 or height <= 0:
        raise ValueError("empty image")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    # Rounding to factor multiples (at least one factor per side) can still overshoot for extreme
    # aspect ratios or min_pixels close to max_pixels: trim the longer side until within budget.
    while w * h > max_pixels and max(w, h) > factor:
        if w >= h:
            w = max(factor, min(w - factor, max_pixels // h // factor * factor))
        else:
            h = max(factor, min(h - factor, max_pixels // w // factor * factor))
    return w, h


def _resize(img: Image.Image, budget: VisionBudget, max_pixels: int) -> Image.Image:
    w, h = fit_size(img.width, img.height, budget.min_pixels, max_pixels, budget.factor)
    if (w, h) == img.size:
        return img
    return img.resize((w, h), Image.Resampling.BICUBIC)


def _check_file(path: Path, budget: VisionBudget) -> None:
    if not path.exists():
        raise MediaError(path, "file not found")
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(path, "file is empty")
    if size > budget.max_file_bytes:
        raise MediaError(path, f"file is {size} bytes, above the limit of {budget.max_file_bytes}")


def load_image(source: MediaSource, budget: VisionBudget | None = None, n_images: int = 1) -> Image.Image:
    """An RGB image resized under the budget (``n_images`` share ``max_total_pixels``); a file's EXIF
    orientation is applied."""
    budget = budget or VisionBudget()
    if isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise MediaError(source, "empty bytes")
            fp: Any = io.BytesIO(source)
        else:
            path = Path(source)
            _check_file(path, budget)
            fp = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(fp)
                if img.width * img.height > budget.max_source_pixels:
                    raise MediaError(source, f"image is {img.width}x{img.height}, above max_source_pixels (decompression bomb?)")
                img.load()
                # A camera's EXIF orientation: judge the picture as viewers show it (transformers'
                # own image loader does the same); generated images carry no such tag.
                if img.getexif().get(0x0112, 1) != 1:  # transposing copies: only when there is a tag
                    img = ImageOps.exif_transpose(img)
        except MediaError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise MediaError(source, f"decompression bomb refused ({e})") from None
        except Exception as e:  # PIL raises many types for bad data
            raise MediaError(source, f"cannot decode image ({type(e).__name__}: {e})") from None
    if img.width * img.height > budget.max_source_pixels:
        raise MediaError(source, f"image is {img.width}x{img.height}, above max_source_pixels")
    if img.width == 0 or img.height == 0:
        raise MediaError(source, "image has no pixels")
    return _resize(img.convert("RGB"), budget, budget.per_image_max(n_images))


def sample_indices(total: int, n: int) -> list[int]:
    """``n`` uniformly spaced frame indices over ``total`` frames (``np.linspace``, as the paper's eval).

    >>> sample_indices(126, 8)
    [0, 18, 36, 54, 71, 89, 107, 125]
    >>> sample_indices(3, 8)
    [0, 1, 2]
    """
    if total <= 0:
        return []
    if total <= n:
        return list(range(total))
    return [int(round(x)) for x in np.linspace(0, total - 1, n)]


def _fps_indices(total: int, native_fps: float, fps: float, cap: int) -> list[int]:
    step = max(native_fps / fps, 1.0)
    idx = [int(round(i * step)) for i in range(int(total / step) + 1) if round(i * step) < total]
    if len(idx) > cap:
        idx = [idx[i] for i in sample_indices(len(idx), cap)]
    return idx


class Frames(list):
    """The sampled frames of one video (a plain list of PIL images to every consumer) that also keep
    where they came from: ``indices`` among the source's ``total`` frames and its native ``fps``
    (``None`` when unknown, as for a folder of frame images). Models that print frame times (Qwen3-VL)
    need them.

    >>> f = Frames(["f0", "f1"], indices=[0, 12], fps=24.0, total=13)
    >>> f == ["f0", "f1"], f.timestamps()
    (True, [0.0, 0.5])
    """

    def __init__(self, frames: Any = (), indices: list[int] | None = None, fps: float | None = None, total: int | None = None):
        super().__init__(frames)
        self.indices = list(indices) if indices is not None else list(range(len(self)))
        self.fps = fps
        self.total = total if total is not None else (max(self.indices) + 1 if self.indices else 0)

    def timestamps(self) -> list[float] | None:
        return None if self.fps is None else [i / self.fps for i in self.indices]

    def metadata(self) -> dict[str, Any]:
        """The frames' ``transformers`` video metadata (``VideoMetadata`` fields)."""
        return {"total_num_frames": self.total, "fps": self.fps, "frames_indices": self.indices}



class _PacketIndex:
    """Where each stored frame of a stream sits: presentation timestamps in display order (frame ``i``
    of a sequential decode has ``pts[i]`` when the decoder gives one frame per packet) and the
    keyframes a seek can land on."""

    def __init__(self, records: list[tuple[int | None, int | None, bool]]):
        self.total = len(records)
        stamps = [pts for pts, _, _ in records]
        # Seeking needs every frame named by a distinct timestamp and a keyframe to start from;
        # streams without (raw streams, some AVI) are decoded from the start.
        self.seekable = (
            self.total > 0 and records[0][2] and None not in stamps and len(set(stamps)) == self.total
            and sum(key for _, _, key in records) > 1
        )
        self.pts: list[int] = sorted(stamps) if self.seekable else []  # type: ignore[arg-type]
        self.position = {pts: i for i, pts in enumerate(self.pts)}
        # For each keyframe: its display position and the timestamp to seek to. A demuxer's index may
        # be keyed by decode or presentation time; the smaller of the two never lands after the keyframe.
        keys = sorted(
            (self.position[pts], min(pts, dts if dts is not None else pts))
            for pts, dts, key in records if key and self.seekable
        )
        self.key_positions = [k for k, _ in keys]
        self.key_seek = [t for _, t in keys]

    @classmethod
    def read(cls, container: Any, stream: Any, limit: int, path: Path) -> _PacketIndex:
        records: list[tuple[int | None, int | None, bool]] = []
        for packet in container.demux(stream):
            if packet.size:
                records.append((packet.pts, packet.dts, bool(packet.is_keyframe)))
                if len(records) > limit:
                    raise MediaError(path, f"more than max_video_frames={limit} frames")
        return cls(records)

    def keyframe_before(self, i: int) -> int:
        """Which keyframe (its number among keyframes) a decode reaching display position ``i`` starts from."""
        return max(bisect.bisect_right(self.key_positions, i) - 1, 0)


def _frames_from(container: Any, stream: Any, timestamp: int) -> Any:
    container.seek(timestamp, stream=stream, backward=True, any_frame=False)
    for packet in container.demux(stream):
        yield from packet.decode()


def _seek_decode(container: Any, stream: Any, index: _PacketIndex, idx: list[int], convert: Any) -> dict[int, Image.Image] | None:
    """The frames at display positions ``idx``, seeking to the keyframe before each and decoding forward
    only to it; ``None`` when the stream does not behave as its index says (a timestamp the index does
    not hold, a frame skipped or missing, a seek that fails), so the caller decodes sequentially."""
    kept: dict[int, Image.Image] = {}
    frames: Any = None
    at = -1  # display position of the last decoded frame
    try:
        for i in sorted(set(idx)):
            k = index.keyframe_before(i)
            # Decoding on is cheaper than seeking while the target's keyframe is not past us.
            if frames is None or index.key_positions[k] > at:
                frames = _frames_from(container, stream, index.key_seek[k])
                at = -1
            for frame in frames:
                pos = index.position.get(frame.pts) if frame.pts is not None else None
                if pos is None or pos > i or (at >= 0 and pos != at + 1):
                    return None
                at = pos
                if pos == i:
                    kept[i] = convert(frame)
                    break
            else:
                return None
    except Exception:  # a decoder or seek error: the sequential decode reports it in its own words
        return None
    return kept


def _sequential_decode(path: Path, total: int, idx: list[int], convert: Any) -> dict[int, Image.Image]:
    """Frames at positions ``idx`` by decoding from the start: the reference the seeking path matches.
    It opens the file afresh: some streams (raw H.264) cannot seek back to their start."""
    import av

    wanted = set(idx)
    kept: dict[int, Image.Image] = {}
    decoded = 0
    last: Any = None
    reached = False  # stopped after the last wanted frame rather than by running out of frames
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                if decoded in wanted:
                    kept[decoded] = convert(frame)
                last = frame
                decoded += 1
                if decoded >= total or decoded > max(wanted):
                    reached = True
                    break
    except Exception as e:
        raise MediaError(path, f"corrupt video data after {decoded} frames ({type(e).__name__}: {e})") from None
    if decoded == 0:
        raise MediaError(path, "no decodable frames")
    if not reached and decoded < total - max(2, total // 20):
        raise MediaError(path, f"corrupt: {total} frames stored, only {decoded} decode")
    # A decoder may return a frame or two fewer than the packets; reuse the last one.
    if len(kept) < len(wanted):
        tail = convert(last)
        kept.update({i: tail for i in wanted if i not in kept})
    return kept


def load_frames(frames: Any, budget: VisionBudget | None = None, n_videos: int = 1, root: Any = None) -> Frames:
    """A video given as a list of frames (paths, resolved against ``root``, or PIL images), sampled
    like a video file: ``budget.frames`` uniformly spaced, sized so ``n_videos`` videos share the budget.

    >>> from PIL import Image
    >>> out = load_frames([Image.new("RGB", (56, 56))] * 120, VisionBudget(frames=8))
    >>> len(out), out.indices[:3], out.total
    (8, [0, 17, 34], 120)
    """
    budget = budget or VisionBudget()
    frames = list(frames)
    if not frames:
        raise MediaError("frame list", "no frames")
    ids = sample_indices(len(frames), budget.frames)
    load = [frames[i] if isinstance(frames[i], Image.Image) else resolve(str(frames[i]), root) for i in ids]
    return Frames((load_image(f, budget, n_images=len(ids) * n_videos) for f in load), indices=ids, total=len(frames))


def load_video(source: str | os.PathLike[str], budget: VisionBudget | None = None, n_videos: int = 1) -> Frames:
    """Frames of a video: ``budget.frames`` uniformly sampled (or at ``budget.fps``, capped at ``frames``),
    each resized so all frames of ``n_videos`` videos share ``max_total_pixels``; returned as
    :class:`Frames`, which remember their source indices and the native frame rate.

    A directory is read as a video given as frame images (sorted by name; no frame rate).
    """
    import av  # local: importing PyAV costs ~0.1 s and most callers never need it

    budget = budget or VisionBudget()
    path = Path(source)
    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp"))
        if not frames:
            raise MediaError(path, "frame directory holds no images")
        return load_frames(frames, budget, n_videos)
    _check_file(path, budget)
    try:
        container = av.open(str(path))
    except Exception as e:
        raise MediaError(path, f"cannot open video ({type(e).__name__}: {e})") from None
    try:
        if not container.streams.video:
            raise MediaError(path, "no video stream")
        stream = container.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if w * h > budget.max_source_pixels:
            raise MediaError(path, f"video is {w}x{h}, above max_source_pixels")
        declared = int(stream.frames or 0)
        if declared == 0 and stream.duration and stream.average_rate:
            declared = int(float(stream.duration * stream.time_base) * float(stream.average_rate))
        if declared > budget.max_video_frames:
            raise MediaError(path, f"video declares {declared} frames, above max_video_frames")
        stated_fps = float(stream.average_rate or 0) or None
        native_fps = stated_fps or 25.0  # for fps sampling only; the frames report an unknown rate
        # Index the packets (cheap, no decoding), choose the indices, then decode only what they need:
        # memory stays at `frames` images whatever the length.
        try:
            index = _PacketIndex.read(container, stream, budget.max_video_frames, path)
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(path, f"corrupt video container ({type(e).__name__}: {e})") from None
        total = index.total
        if total == 0:
            raise MediaError(path, "no video frames")
        if declared and total < declared - max(2, declared // 20):
            raise MediaError(path, f"truncated: header declares {declared} frames, only {total} present")
        if budget.fps is not None:
            idx = _fps_indices(total, native_fps, budget.fps, budget.frames)
        else:
            idx = sample_indices(total, budget.frames)
        per = budget.per_image_max(len(idx) * n_videos)

        def convert(frame: Any) -> Image.Image:
            return _resize(frame.to_image().convert("RGB"), budget, per)

        kept = _seek_decode(container, stream, index, idx, convert) if index.seekable else None
        if kept is None:
            kept = _sequential_decode(path, total, idx, convert)
        return Frames((kept[i] for i in idx), indices=idx, fps=stated_fps, total=total)
    finally:
        container.close()


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v") or Path(path).is_dir()


def resolve(path: str, root: str | os.PathLike[str] | None) -> str:
    """A media path resolved against a root (absolute paths and URLs are left alone)."""
    if root is None or "://" in path or os.path.isabs(path):
        return path
    return str(Path(root) / path)
