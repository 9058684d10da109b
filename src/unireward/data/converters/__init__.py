"""Converters from the paper's public training sources to :class:`PreferencePair` JSONL.

>>> sorted(CONVERTERS)  # doctest: +NORMALIZE_WHITESPACE
['evalmuse', 'hpd', 'imagegen-cot-5k', 'llava-critic', 'oip', 'rapidata-t2i', 'rapidata-t2v',
 'sharegptvideo-dpo', 'videodpo']
"""

from __future__ import annotations

import os
from typing import Any

from unireward.data.converters.base import (
    ConvertContext,
    Converter,
    ConvertReport,
    RowError,
    SourceUnavailable,
    run_conversion,
)
from unireward.data.converters.evalmuse import EvalMuseConverter
from unireward.data.converters.hpd import HPDConverter
from unireward.data.converters.imagegen_cot import ImageGenCoTConverter
from unireward.data.converters.llava_critic import LLaVACriticConverter
from unireward.data.converters.oip import OIPConverter
from unireward.data.converters.rapidata import RapidataT2IConverter, RapidataT2VConverter
from unireward.data.converters.sharegptvideo import ShareGPTVideoDPOConverter
from unireward.data.converters.videodpo import VideoDPOConverter

CONVERTERS: dict[str, type[Converter]] = {
    c.name: c
    for c in (
        HPDConverter, OIPConverter, EvalMuseConverter, RapidataT2IConverter, RapidataT2VConverter,
        VideoDPOConverter, LLaVACriticConverter, ShareGPTVideoDPOConverter, ImageGenCoTConverter,
    )
}  # fmt: skip


def get_converter(name: str) -> Converter:
    """A converter by its CLI name (``hpd``, ``oip``, ...)."""
    if name not in CONVERTERS:
        raise KeyError(f"unknown source {name!r}; choose from {sorted(CONVERTERS)}")
    return CONVERTERS[name]()


def convert(
    source: str,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    media_out: str | os.PathLike[str] | None = None,
    rejects: str | os.PathLike[str] | None = None,
    balance: bool = True,
    check_media: bool = False,
    limit: int | None = None,
    seed: int = 0,
    **options: Any,
) -> ConvertReport:
    """Convert one source; ``options`` set converter attributes (e.g. ``criterion``, ``min_margin``)."""
    conv = get_converter(source)
    for k, v in options.items():
        if v is None:
            continue
        if not hasattr(conv, k):
            raise ValueError(f"source {source!r} has no option {k!r}")
        setattr(conv, k, v)
    if root is None and os.path.isdir(src):
        root = src  # media paths of every source are relative to its own folder
    elif root is None and os.path.isfile(src):
        root = os.path.dirname(os.fspath(src)) or "."
    if media_out is None:
        media_out = os.path.join(os.path.dirname(os.fspath(out)) or ".", f"{source}-media")
    ctx = ConvertContext(root=root, media_out=media_out, balance=balance, check_media=check_media, seed=seed)
    return run_conversion(conv, src, out, ctx, rejects=rejects, limit=limit)


__all__ = [
    "CONVERTERS", "ConvertContext", "ConvertReport", "Converter", "RowError", "SourceUnavailable",
    "convert", "get_converter", "run_conversion",
]  # fmt: skip
