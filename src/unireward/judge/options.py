"""Typed, validated settings of a judge and of its transformers backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class JudgeOptions:
    """How a judge generates and combines verdicts.

    ``temperature=0`` is greedy decoding (the default). ``num_samples > 1`` draws that many sampled
    judgments per order and majority-votes them; it needs a positive temperature, since greedy
    samples would all be the same. ``swap=True`` also judges the pair in the other order and
    combines both (agreement is reported).
    """

    max_new_tokens: int = 4096
    temperature: float = 0.0
    top_p: float = 1.0
    num_samples: int = 1
    swap: bool = False
    strict: bool = False
    template_family: str | None = None
    pointwise_family: str | None = None
    video_as: str = "video"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        from unireward.protocol.tasks import Mode
        from unireward.protocol.templates import get_family
        from unireward.request.rules import check_samples

        check_samples(self.num_samples, self.temperature)  # the rule the app and the server follow too

        for name, mode in ((self.template_family, Mode.PAIRWISE), (self.pointwise_family, Mode.POINTWISE)):
            if name is not None:
                try:  # unknown names fail here, naming the registered ones
                    get_family(name, mode)
                except KeyError as e:
                    raise ValueError(e.args[0]) from None
        if self.video_as not in ("video", "frames"):
            raise ValueError(f"video_as must be 'video' or 'frames', got {self.video_as!r}")


@dataclass
class BatchOptions:
    """How the transformers backend groups requests into ``generate`` calls.

    A batch holds at most ``max_batch_size`` prompts and at most ``max_batch_tokens`` padded prompt
    tokens (rows x longest prompt, vision tokens included, times the samples per prompt).
    """

    max_batch_size: int = 16
    max_batch_tokens: int = 65536

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {self.max_batch_tokens}")
