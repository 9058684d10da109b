"""unireward: a unified multimodal chain-of-thought reward model toolkit.

Judge pairs of images, videos or answers with a model that reasons in ``<think>`` and answers in
``<answer>``; train one (distill, cold-start SFT, rejection sampling, GRPO); evaluate and serve it.
"""

from importlib import metadata as _metadata

from unireward import _deepspeed_log  # noqa: F401  (first: before anything imports DeepSpeed)
from unireward.data.schema import PreferencePair, SchemaError, read_pairs, write_pairs
from unireward.media import MediaError, VisionBudget, load_image, load_video
from unireward.protocol import Judgment, Mode, Task, parse_judgment, render_messages

try:  # the version is written once, in pyproject.toml
    __version__ = _metadata.version("unireward")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Judgment",
    "MediaError",
    "Mode",
    "PreferencePair",
    "SchemaError",
    "Task",
    "VisionBudget",
    "load_image",
    "load_video",
    "parse_judgment",
    "read_pairs",
    "render_messages",
    "write_pairs",
]
