"""What one request may carry and how much work the server accepts at once."""

from __future__ import annotations

from dataclasses import dataclass, fields

#: containers a ``data:video/...`` upload may use (sniffed from the bytes, not taken from the MIME
#: type): anything else, such as an HLS playlist that would make FFmpeg open further URLs, is refused
VIDEO_CONTAINERS = ("mp4", "webm", "matroska", "avi", "gif")
#: video codecs the server decodes
VIDEO_CODECS = ("h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg", "gif")
#: default ``--media-cache-mb``: decoded images (~0.4 MB at the default vision budget) and their
#: vision features (~1.4 MB for a 7B Qwen2.5-VL in bf16) of about a dozen GRPO groups of 8
DEFAULT_MEDIA_CACHE_MB = 256


@dataclass(frozen=True)
class ServerLimits:
    """Per-request limits (each answered with a 4xx naming it) and the server's admission bounds.

    Pixel limits are checked from image and video headers before any pixel is decoded.
    """

    max_request_bytes: int = 64 << 20
    max_images: int = 32  # per request; video frames count as images
    max_image_pixels: int = 4096 * 4096  # of each uploaded image, before downsizing
    max_new_tokens: int = 4096  # a larger max_tokens is clamped to this (visible in the response)
    max_samples: int = 16
    max_prompt_tokens: int = 32768  # prompt tokens (vision tokens included), checked before generation
    max_video_frames: int = 10_000  # frames stored in one uploaded video file
    max_frame_pixels: int = 4096 * 4096  # of each frame of an uploaded video file
    max_video_pixels: int = 1 << 30  # frames x width x height the decoder may have to touch
    max_queue: int = 256  # generations admitted beyond the running batch; more get 429
    max_group_pairs: int = 256  # judgments one /v1/rewards group may need (pairs, both orders counted); more get 413
    decode_workers: int = 2  # threads decoding media (memory follows this, not the client count)
    video_containers: tuple[str, ...] = VIDEO_CONTAINERS
    video_codecs: tuple[str, ...] = VIDEO_CODECS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and value < 1:
                raise ValueError(f"{f.name} must be >= 1, got {value}")
        unknown = set(self.video_containers) - set(VIDEO_CONTAINERS)
        if unknown:
            raise ValueError(f"unknown video containers {sorted(unknown)}; known: {VIDEO_CONTAINERS}")

    def summary(self) -> str:
        """One line for the startup log.

        >>> ServerLimits(max_queue=8).summary().split()[0:2]
        ['max_request_bytes=67108864', 'max_images=32']
        """
        return " ".join(f"{f.name}={getattr(self, f.name) if not isinstance(getattr(self, f.name), tuple) else ','.join(getattr(self, f.name))}" for f in fields(self))
