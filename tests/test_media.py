"""Media loading on the real VideoAlign videos and on broken, hostile and odd files."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from unireward.media import MediaError, VisionBudget, fit_size, load_image, load_video, sample_indices


def within(img: Image.Image, max_pixels: int, factor: int = 28) -> bool:
    w, h = img.size
    return w * h <= max_pixels and w % factor == 0 and h % factor == 0 and w >= factor and h >= factor


def test_real_videos_decode_to_eight_frames_within_budget(videoalign_videos: list[Path]) -> None:
    assert len(videoalign_videos) == 6
    budget = VisionBudget()
    for path in videoalign_videos:
        frames = load_video(path, budget)
        assert len(frames) == 8, path.name
        assert all(f.mode == "RGB" and within(f, budget.max_pixels) for f in frames), path.name
        assert len({f.size for f in frames}) == 1
        # uniformly sampled: first and last frames differ (these clips move)
        assert frames[0].tobytes() != frames[-1].tobytes()


def test_fps_sampling(videoalign_videos: list[Path]) -> None:
    # example_3_B is 60 frames at 16 fps (3.75 s): 1 fps gives 4 frames; 8 fps would give 30, capped at 8.
    short = next(p for p in videoalign_videos if p.name == "example_3_B.mp4")
    assert len(load_video(short, VisionBudget(fps=1.0))) == 4
    assert len(load_video(short, VisionBudget(fps=8.0))) == 8
    assert len(load_video(short, VisionBudget(fps=8.0, frames=64))) == 30
    frames = load_video(short, VisionBudget(fps=2.0, max_pixels=50_000))
    assert len(frames) == 8 and all(within(f, 50_000) for f in frames)


def test_shared_total_budget_for_two_videos(videoalign_videos: list[Path]) -> None:
    budget = VisionBudget(max_total_pixels=400_000)
    pair = [load_video(p, budget, n_videos=2) for p in videoalign_videos[:2]]
    frames = [f for video in pair for f in video]
    assert len(frames) == 16
    assert all(within(f, 400_000 // 16) for f in frames)
    assert sum(f.width * f.height for f in frames) <= 400_000
    # alone, one video may use more pixels per frame
    alone = load_video(videoalign_videos[0], budget)
    assert alone[0].width * alone[0].height > frames[0].width * frames[0].height


def test_sampled_frames_match_a_full_decode(videoalign_videos: list[Path]) -> None:
    """Keeping only the sampled frames while decoding gives the same frames as decoding everything."""
    import av

    path = videoalign_videos[-1]
    with av.open(str(path)) as c:
        everything = [f.to_image() for f in c.decode(video=0)]
    budget = VisionBudget(max_pixels=20_000)
    got = load_video(path, budget)
    idx = sample_indices(len(everything), 8)
    w, h = got[0].size
    expected = [everything[i].convert("RGB").resize((w, h), Image.Resampling.BICUBIC) for i in idx]
    assert [g.tobytes() for g in got] == [e.tobytes() for e in expected]
    # the frames remember which source frames they are and the stream's rate (for frame timestamps)
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
    assert got.indices == idx and got.fps == rate
    assert got.timestamps() == [i / rate for i in idx]
    assert got.metadata() == {"total_num_frames": len(everything), "fps": rate, "frames_indices": idx}


def test_frame_folder_is_a_video(tmp_path: Path, videoalign_videos: list[Path]) -> None:
    frames = load_video(videoalign_videos[0], VisionBudget(frames=12))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        f.save(folder / f"{i:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    got = load_video(folder, VisionBudget(frames=4, max_total_pixels=100_000), n_videos=2)
    assert len(got) == 4 and all(within(f, 100_000 // 8) for f in got)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="empty.*no images"):
        load_video(tmp_path / "empty")


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.97])
def test_truncated_video(videoalign_videos: list[Path], tmp_path: Path, fraction: float) -> None:
    for src in videoalign_videos[::3]:  # one with its index at the end, one with it at the start
        data = src.read_bytes()
        bad = tmp_path / f"cut_{src.name}"
        bad.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(MediaError) as e:
            load_video(bad)
        assert str(bad) in str(e.value) and e.value.source == str(bad)


def test_corrupt_middle_of_video(videoalign_videos: list[Path], tmp_path: Path) -> None:
    src = next(p for p in videoalign_videos if p.name == "example_2_B.mp4")  # index at the start
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 200_000] = random.Random(1).randbytes(200_000)
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="corrupt.mp4"):
        load_video(bad)


def test_random_bytes_missing_and_empty_video(tmp_path: Path) -> None:
    rnd = tmp_path / "random.mp4"
    # seeded: a few random byte strings in a thousand happen to probe as some container
    rnd.write_bytes(random.Random(0).randbytes(64_000))
    with pytest.raises(MediaError, match="random.mp4"):
        load_video(rnd)
    with pytest.raises(MediaError, match="missing.mp4: file not found"):
        load_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(MediaError, match="empty.mp4: file is empty"):
        load_video(tmp_path / "empty.mp4")
    png = tmp_path / "image.mp4"
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    # FFmpeg opens a still image under a video name as a one-frame video; it stays within budget
    frames = load_video(png)
    assert len(frames) == 1 and within(frames[0], VisionBudget().max_pixels)


def test_huge_video_dimensions_and_file_size_are_refused(videoalign_videos: list[Path]) -> None:
    with pytest.raises(MediaError, match="max_source_pixels"):
        load_video(videoalign_videos[0], VisionBudget(max_source_pixels=100_000))
    with pytest.raises(MediaError, match="above the limit"):
        load_video(videoalign_videos[0], VisionBudget(max_file_bytes=1000))
    with pytest.raises(MediaError, match="max_video_frames"):
        load_video(videoalign_videos[0], VisionBudget(max_video_frames=50))



# ---- seeking decode ----------------------------------------------------------------------------


def write_video(path: Path, n: int, gop: int, codec: str = "libx264", size: tuple[int, int] = (96, 64), bframes: int = 0, fps: int = 24) -> Path:
    """A small video whose every frame differs (moving noise), with a keyframe every ``gop`` frames."""
    import av
    import numpy as np

    rng = np.random.default_rng(gop + n)
    base = rng.integers(0, 256, (size[1], size[0] * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"bf": str(bframes), "preset": "ultrafast" if not bframes else "fast",
                              "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}  # fmt: skip
        elif codec == "mpeg4":
            stream.options = {"bf": str(bframes), "qscale": "3"}
        for i in range(n):
            img = np.ascontiguousarray(base[:, i % size[0] : i % size[0] + size[0]])
            img[: 4 + i % 8, :8] = (i * 37) % 256  # a per-frame mark, so no two frames decode alike
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def full_decode(path: Path) -> list[Image.Image]:
    import av

    with av.open(str(path)) as c:
        return [f.to_image() for f in c.decode(video=0)]


def expected_frames(everything: list[Image.Image], idx: list[int], size: tuple[int, int]) -> list[bytes]:
    return [everything[i].convert("RGB").resize(size, Image.Resampling.BICUBIC).tobytes() for i in idx]


class DecodeCount:
    """Counts the frames the seeking path decodes (and forbids the sequential path when asked)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, sequential_allowed: bool = True):
        import unireward.media as media

        self.frames = 0
        self.seeks = 0
        self.sequential = 0
        real_from, real_seq = media._frames_from, media._sequential_decode

        def counting_from(*args: object):
            self.seeks += 1
            for frame in real_from(*args):
                self.frames += 1
                yield frame

        def seq(*args: object, **kw: object):
            self.sequential += 1
            if not sequential_allowed:
                raise AssertionError("fell back to the sequential decode")
            return real_seq(*args, **kw)

        monkeypatch.setattr(media, "_frames_from", counting_from)
        monkeypatch.setattr(media, "_sequential_decode", seq)


@pytest.mark.parametrize(
    ("codec", "gop", "bframes", "suffix"),
    [("libx264", 12, 0, ".mp4"), ("libx264", 30, 2, ".mp4"), ("libx264", 7, 3, ".mkv"), ("mpeg4", 25, 0, ".mp4"),
     ("mpeg4", 10, 2, ".avi"), ("mjpeg", 1, 0, ".avi"), ("libvpx-vp9", 16, 0, ".webm")],
)  # fmt: skip
def test_seeking_decode_matches_a_full_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str, gop: int, bframes: int, suffix: str) -> None:
    path = write_video(tmp_path / f"v{suffix}", 150, gop, codec, bframes=bframes)
    everything = full_decode(path)
    assert len(everything) == 150
    count = DecodeCount(monkeypatch, sequential_allowed=False)
    for budget in (VisionBudget(), VisionBudget(fps=3.0, frames=16), VisionBudget(frames=40), VisionBudget(frames=200)):
        got = load_video(path, budget)
        assert got.total == 150
        assert [g.tobytes() for g in got] == expected_frames(everything, got.indices, got[0].size), (codec, budget)
    assert count.sequential == 0 and count.seeks > 0


def test_seeking_decodes_at_most_a_keyframe_interval_per_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_video(tmp_path / "long.mp4", 480, 24)
    count = DecodeCount(monkeypatch, sequential_allowed=False)
    frames = load_video(path)
    assert len(frames) == 8 and frames.indices[-1] == 479
    # 8 samples, each at most one keyframe interval (24 frames) past its keyframe: never all 480 frames
    assert count.frames <= 8 * 24 and count.seeks <= 8
    assert [f.tobytes() for f in frames] == expected_frames(full_decode(path), frames.indices, frames[0].size)


def test_real_videos_reencoded_with_short_keyframe_intervals(videoalign_videos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real footage (B-frames, open GOPs) cut into short keyframe intervals decodes as a full decode does."""
    import av

    src = next(p for p in videoalign_videos if p.name == "example_3_B.mp4")
    dst = tmp_path / "reencoded.mp4"
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 344, 192, "yuv420p"
        stream.options = {"bf": "3", "preset": "fast", "x264-params": "keyint=9:min-keyint=5:open-gop=1"}
        for frame in inp.decode(video=0):
            for packet in stream.encode(frame.reformat(344, 192)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    everything = full_decode(dst)
    count = DecodeCount(monkeypatch, sequential_allowed=False)
    for budget in (VisionBudget(), VisionBudget(fps=2.0), VisionBudget(frames=60)):
        got = load_video(dst, budget)
        assert [g.tobytes() for g in got] == expected_frames(everything, got.indices, got[0].size)
    assert count.seeks > 1


def test_streams_without_timestamps_decode_sequentially(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw H.264 stream has no container timestamps to seek by: the sequential decode serves it."""
    raw = write_video(tmp_path / "v.h264", 60, 10)
    count = DecodeCount(monkeypatch)
    got = load_video(raw)
    assert count.sequential == 1 and count.seeks == 0
    everything = full_decode(raw)
    assert len(everything) == 60 and got.total == 60
    assert [g.tobytes() for g in got] == expected_frames(everything, got.indices, got[0].size)


def test_a_failing_seek_falls_back_to_the_sequential_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import unireward.media as media

    path = write_video(tmp_path / "v.mp4", 90, 10)

    def broken(*args: object):
        raise OSError("seek refused")
        yield  # a generator, as the real one

    monkeypatch.setattr(media, "_frames_from", broken)
    got = load_video(path)
    assert [g.tobytes() for g in got] == expected_frames(full_decode(path), got.indices, got[0].size)

# ---- images ----------------------------------------------------------------------------------


def test_images_from_path_bytes_and_pil(tiny_images: list[Path]) -> None:
    path = tiny_images[1]  # 72x56
    a = load_image(path)
    b = load_image(path.read_bytes())
    c = load_image(Image.open(path))
    d = load_image(str(path))
    assert a.size == b.size == c.size == d.size == (84, 56)
    assert a.tobytes() == b.tobytes() == c.tobytes() == d.tobytes()
    big = Image.new("RGBA", (2000, 500), (255, 0, 0, 128))
    out = load_image(big, VisionBudget(max_pixels=100_000))
    assert out.mode == "RGB" and within(out, 100_000)
    shared = load_image(big, VisionBudget(max_total_pixels=100_000), n_images=4)
    assert within(shared, 25_000)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [9000, 20000, 60000])
def test_decompression_bomb_refused_from_its_header(tmp_path: Path, side: int) -> None:
    # The file is ~100 bytes; decoding it would allocate side*side*3 bytes (243 MB to 10.8 GB).
    # It is refused from the declared size alone (the message says so), before any pixel is decoded.
    bomb = tmp_path / f"bomb{side}.png"
    bomb.write_bytes(_png_header_only(side, side))
    assert bomb.stat().st_size < 200
    with pytest.raises(MediaError) as e:
        load_image(bomb)
    assert e.value.source == str(bomb)
    assert "max_source_pixels" in e.value.reason or "decompression bomb" in e.value.reason
    with pytest.raises(MediaError, match="bytes>: .*(max_source_pixels|decompression bomb)"):
        load_image(bomb.read_bytes())
    # a budget that allows the size would try to decode it: the refusal comes from the budget
    small = tmp_path / "small.png"
    small.write_bytes(_png_header_only(64, 64))
    with pytest.raises(MediaError, match="max_source_pixels"):
        load_image(small, VisionBudget(max_source_pixels=1000))


def test_bad_images(tmp_path: Path, tiny_images: list[Path]) -> None:
    data = tiny_images[0].read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    rnd = tmp_path / "random.jpg"
    rnd.write_bytes(random.Random(2).randbytes(5000))
    (tmp_path / "empty.png").touch()
    for path, reason in [(cut, "cannot decode"), (rnd, "cannot decode"), (tmp_path / "empty.png", "empty"),
                         (tmp_path / "nope.png", "not found"), (tmp_path, "not a regular file")]:  # fmt: skip
        with pytest.raises(MediaError) as e:
            load_image(path)
        assert str(path) in str(e.value) and reason in e.value.reason
    with pytest.raises(MediaError, match="empty bytes"):
        load_image(b"")
    with pytest.raises(MediaError, match="<5 bytes>"):
        load_image(b"\x00\x01\x02\x03\x04")


def test_truncated_jpeg(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(buf, format="JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(MediaError, match="cut.jpg"):
        load_image(cut)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A portrait photo stored landscape with EXIF orientation 6 (rotate 90 degrees) is judged upright."""
    upright = Image.new("RGB", (112, 224), "white")
    upright.paste((255, 0, 0), (0, 0, 112, 56))  # red band at the top
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote: 224 x 112
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    stored.save(path, exif=exif, quality=95)
    budget = VisionBudget(max_pixels=112 * 224, factor=28)
    for source in (path, path.read_bytes()):
        img = load_image(source, budget)
        assert img.size == (112, 224)
        r, g, b = img.getpixel((56, 10))
        assert r > 200 and g < 60 and b < 60  # the red band is at the top again


@pytest.mark.parametrize(
    "size,lo,hi",
    [((1920, 1080), 3136, 147456), ((10, 10), 3136, 147456), ((100_000, 10), 3136, 147456),
     ((10, 100_000), 3136, 147456), ((10, 20), 3136, 3136), ((333, 777), 784, 10_000), ((1, 1), 784, 784)],
)  # fmt: skip
def test_fit_size_never_exceeds_the_budget(size: tuple[int, int], lo: int, hi: int) -> None:
    w, h = fit_size(*size, lo, hi)
    assert w * h <= hi and w % 28 == 0 and h % 28 == 0 and w >= 28 and h >= 28


def test_budget_validation() -> None:
    for bad in (dict(min_pixels=0), dict(min_pixels=200_000), dict(frames=0), dict(fps=0.0),
                dict(max_total_pixels=10), dict(min_pixels=100), dict(factor=0)):  # fmt: skip
        with pytest.raises(ValueError):
            VisionBudget(**bad)
