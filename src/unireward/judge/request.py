"""Moved to :mod:`unireward.request` (one layer below the judge); these names keep working."""

from unireward.request import (
    JudgeRequest,
    RequestError,
    check_reference,
    load_pair_media,
    media_inputs,
    media_order,
    pair_messages,
    swap_media,
)

__all__ = [
    "JudgeRequest",
    "RequestError",
    "check_reference",
    "load_pair_media",
    "media_inputs",
    "media_order",
    "pair_messages",
    "swap_media",
]
