"""Request media (base64 ``data:`` URLs, or paths under a media root) to PIL images and frames.

Runs in the server's bounded decode pool, never on the event loop. Sizes are read from headers and
checked before any pixel is decoded, and images shrink while decoding (JPEG draft mode decodes at
1/2, 1/4 or 1/8 scale; other formats are box-reduced right after decoding), so what a request holds
follows the model's vision budget, not the size of the upload.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from unireward.judge.media_cache import MediaCache, bytes_key
from unireward.media import Frames, MediaError, VisionBudget, fit_size, load_image, load_video
from unireward.serve.errors import ApiError
from unireward.serve.limits import ServerLimits

_MIME = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
_EXIF_ORIENTATION = 0x0112


def parse_data_url(url: Any, what: str) -> tuple[str, bytes]:
    """MIME type and payload of a base64 ``data:`` URL.

    >>> parse_data_url("data:image/png;base64,AAEC", "image")
    ('image/png', b'\\x00\\x01\\x02')
    >>> parse_data_url("data:image;base64,AAEC", "image")[0]
    'image'
    >>> parse_data_url("data:image/p\\x00ng;base64,AAEC", "image")
    Traceback (most recent call last):
    ...
    unireward.serve.errors.ApiError: image: malformed MIME type in data: URL
    """
    if not isinstance(url, str) or not url.startswith("data:"):
        raise ApiError(400, f"{what}: media must be base64 data: URLs (remote URLs are not fetched)", "bad_media")
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise ApiError(400, f"{what}: data: URL must be base64-encoded", "bad_media")
    mime = header[5:].split(";")[0].strip().lower()
    # a bare "image" or "video" (Flow-GRPO's client sends ``data:image;base64,``): the bytes say the format
    if mime and mime not in ("image", "video") and not _MIME.match(mime):
        raise ApiError(400, f"{what}: malformed MIME type in data: URL", "bad_media")
    try:
        return mime, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{what}: data: URL holds invalid base64", "bad_media") from None


def sniff_container(head: bytes) -> str | None:
    """The container a video file uses, from its first bytes (``None`` when not an allowed kind).

    >>> sniff_container(b"\\x00\\x00\\x00\\x18ftypmp42"), sniff_container(b"#EXTM3U\\n")
    ('mp4', None)
    """
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head[:64] else "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


#: FFmpeg demuxer to force for each sniffed container, so the bytes cannot pick another one
_DEMUXER = {"mp4": "mp4", "webm": "matroska", "matroska": "matroska", "avi": "avi", "gif": "gif"}


def pad_frames(frames: list[Image.Image], multiple: int) -> list[Image.Image]:
    """Repeat the last frame until the count is a multiple of the model's temporal patch.

    >>> len(pad_frames([Image.new("RGB", (4, 4))], 2)), len(pad_frames([Image.new("RGB", (4, 4))] * 3, 1))
    (2, 3)
    """
    short = (-len(frames)) % multiple if multiple > 1 else 0
    if not short:
        return frames
    if isinstance(frames, Frames):
        return Frames(list(frames) + [frames[-1]] * short, indices=frames.indices + [frames.indices[-1]] * short,
                      fps=frames.fps, total=frames.total)  # fmt: skip
    return list(frames) + [frames[-1]] * short


def same_size(frames: list[Image.Image]) -> list[Image.Image]:
    """Frames resized to the first frame's size (a video's frames must share one shape).

    >>> [f.size for f in same_size([Image.new("RGB", (56, 28)), Image.new("RGB", (28, 28))])]
    [(56, 28), (56, 28)]
    """
    size = frames[0].size
    return [f if f.size == size else f.resize(size, Image.Resampling.BICUBIC) for f in frames]


class MediaDecoder:
    """Decodes one request's media under ``limits`` and the model's vision ``budget``.

    ``n_images`` is how many images (video frames included) the request holds: they share the
    budget's ``max_total_pixels`` exactly as the judge would share it. With a ``cache`` an upload
    whose bytes (and share of the budget) were decoded before is not decoded again.
    """

    def __init__(self, limits: ServerLimits, budget: VisionBudget, media_root: Path | None = None,
                 temporal_patch: int = 1, n_images: int = 1, n_videos: int = 1,
                 cache: MediaCache | None = None):  # fmt: skip
        self.limits = limits
        self.budget = budget
        self.media_root = media_root
        self.temporal_patch = temporal_patch
        self.n_images = max(1, n_images)
        self.n_videos = max(1, n_videos)
        self.cache = cache
        self.count = 0

    def _bump(self, n: int = 1) -> None:
        self.count += n
        if self.count > self.limits.max_images:
            raise ApiError(
                413, f"too many images: more than {self.limits.max_images} (video frames count as images; --max-images)",
                "too_many_images",
            )  # fmt: skip

    # ------------------------------------------------------------ images

    def image(self, ref: Any, what: str = "image") -> Image.Image | str:
        self._bump()
        if isinstance(ref, str) and not ref.startswith("data:") and self.media_root is not None:
            return self._path(ref, what, folder_ok=False)
        mime, raw = parse_data_url(ref, what)
        if mime.startswith("video/") or mime == "video":
            raise ApiError(400, f"{what}: a video where an image was expected", "bad_media")
        return self.decode_image(raw, what)

    def decode_image(self, raw: bytes, what: str) -> Image.Image:
        if self.cache is None:
            return self._decode_image(raw, what)
        key = "decoded:" + bytes_key(raw, "image", self.budget, self.n_images, self.limits.max_image_pixels)
        return self.cache.get_or_make(key, lambda: self._decode_image(raw, what))

    def _decode_image(self, raw: bytes, what: str) -> Image.Image:
        lim = self.limits
        target = self.budget.per_image_max(self.n_images)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(raw))  # reads the header only
            w, h = img.size
            if w * h > lim.max_image_pixels:
                raise ApiError(
                    413, f"{what} is {w}x{h} = {w * h} pixels, above the limit of {lim.max_image_pixels} (--max-image-pixels)",
                    "image_too_large",
                )  # fmt: skip
            if w == 0 or h == 0:
                raise ApiError(400, f"{what}: image has no pixels", "bad_media")
            rotated = img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
            tw, th = fit_size(h if rotated else w, w if rotated else h, self.budget.min_pixels, target, self.budget.factor)
            if rotated:
                tw, th = th, tw
            if img.format == "JPEG":
                img.draft("RGB", (tw, th))  # decode at the smallest DCT scale still >= the target
            img.load()
            reduce = min(img.width // tw, img.height // th)
            if reduce >= 2:
                if img.mode not in ("RGB", "RGBA", "L", "LA", "I", "F"):
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                img = img.reduce(reduce)
            if rotated or img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            return load_image(img.convert("RGB"), self.budget, n_images=self.n_images)
        except ApiError:
            raise
        except (Image.DecompressionBombError, MediaError) as e:
            raise ApiError(413, f"{what}: {e}", "image_too_large") from None
        except Exception as e:  # PIL raises many types for bad data
            raise ApiError(400, f"{what}: cannot decode image ({type(e).__name__})", "bad_media") from None

    # ------------------------------------------------------------ videos

    def video(self, ref: Any, what: str = "video") -> list[Image.Image] | str:
        if isinstance(ref, list):
            if not ref:
                raise ApiError(400, f"{what}: empty frame list", "bad_media")
            frames = [self.image(f, f"{what} frame {i}") for i, f in enumerate(ref)]
            if any(isinstance(f, str) for f in frames):
                return frames  # type: ignore[return-value]
            return pad_frames(same_size(frames), self.temporal_patch)  # type: ignore[arg-type]
        if isinstance(ref, str) and not ref.startswith("data:") and self.media_root is not None:
            self._bump()
            return self._path(ref, what)
        mime, raw = parse_data_url(ref, what)
        if mime and not mime.startswith("video/") and mime != "video":
            raise ApiError(400, f"{what}: expected a video data: URL or a list of frame images, got {mime}", "bad_media")
        return self.decode_video(raw, what)

    def decode_video(self, raw: bytes, what: str) -> list[Image.Image]:
        if self.cache is None:
            return self._decode_video(raw, what)
        key = "decoded:" + bytes_key(raw, "video", self.budget, self.n_videos, self.temporal_patch, self.limits)
        frames = self.cache.get(key)
        if frames is None:
            frames = self._decode_video(raw, what)
            self.cache.put(key, frames)
        else:
            self._bump(min(len(frames), self.budget.frames))  # counted as if decoded now
        return frames

    def _decode_video(self, raw: bytes, what: str) -> list[Image.Image]:
        lim = self.limits
        kind = sniff_container(raw[:64])
        if kind is None or kind not in lim.video_containers:
            raise ApiError(
                415, f"{what}: video container not allowed; allowed: {', '.join(lim.video_containers)}", "video_container"
            )  # fmt: skip
        with tempfile.NamedTemporaryFile(suffix="." + kind) as tmp:
            tmp.write(raw)
            tmp.flush()
            n_frames = self._probe_video(tmp.name, kind, what)
            self._bump(min(n_frames, self.budget.frames))
            budget = VisionBudget(**{**self.budget.__dict__, "max_source_pixels": lim.max_frame_pixels,
                                     "max_video_frames": lim.max_video_frames})  # fmt: skip
            try:
                frames = load_video(tmp.name, budget, n_videos=self.n_videos)
            except MediaError as e:
                raise ApiError(400, f"{what}: {e.reason}", "bad_media") from None
        return pad_frames(frames, self.temporal_patch)

    def _probe_video(self, path: str, kind: str, what: str) -> int:
        """Check codec, frame size, frame count and decoded pixels from the container alone."""
        import av

        lim = self.limits
        try:
            container = av.open(path, format=_DEMUXER[kind])
        except Exception as e:
            raise ApiError(400, f"{what}: cannot open video ({type(e).__name__})", "bad_media") from None
        try:
            if not container.streams.video:
                raise ApiError(400, f"{what}: no video stream", "bad_media")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec not in lim.video_codecs:
                raise ApiError(415, f"{what}: video codec {codec!r} not allowed; allowed: {', '.join(lim.video_codecs)}",
                               "video_codec")  # fmt: skip
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > lim.max_frame_pixels:
                raise ApiError(413, f"{what}: frames are {w}x{h} = {w * h} pixels, above the limit of "
                                    f"{lim.max_frame_pixels} (--max-frame-pixels)", "video_frame_too_large")  # fmt: skip
            if w * h == 0:
                raise ApiError(400, f"{what}: video frames have no pixels", "bad_media")
            total = 0
            for packet in container.demux(stream):
                if packet.size:
                    total += 1
                    if total > lim.max_video_frames:
                        raise ApiError(413, f"{what}: more than {lim.max_video_frames} frames (--max-video-frames)",
                                       "video_too_long")  # fmt: skip
            if total * w * h > lim.max_video_pixels:
                raise ApiError(413, f"{what}: {total} frames of {w}x{h} = {total * w * h} decoded pixels, above the "
                                    f"limit of {lim.max_video_pixels} (--max-video-pixels)", "video_too_large")  # fmt: skip
            if total == 0:
                raise ApiError(400, f"{what}: no video frames", "bad_media")
            return total
        except ApiError:
            raise
        except Exception as e:
            raise ApiError(400, f"{what}: corrupt video ({type(e).__name__})", "bad_media") from None
        finally:
            container.close()

    # ------------------------------------------------------------ server-side paths

    def _path(self, ref: str, what: str, folder_ok: bool = True) -> str:
        """``ref`` under the media root; a folder only where one is a medium (a video's frames)."""
        assert self.media_root is not None
        if "\x00" in ref:  # the OS refuses it (ValueError): a bad request, not a server error
            raise ApiError(400, f"{what}: a media path cannot hold a NUL byte", "bad_media")
        path = (self.media_root / ref).resolve()
        if not path.is_relative_to(self.media_root):
            raise ApiError(400, f"{what}: {ref!r} is outside the media root", "bad_media")
        if not path.exists():  # refused by name now, not judged as an unreadable pair later
            raise ApiError(400, f"{what}: {ref!r} not found under the media root", "bad_media")
        if not folder_ok and not path.is_file():
            raise ApiError(400, f"{what}: {ref!r} is a folder, not an image file", "bad_media")
        return str(path)
