"""Judgment requests: one type, one validator, one media loader, one prompt builder.

Sits between the protocol and the judge: it imports only :mod:`unireward.media` and
:mod:`unireward.protocol` (and :class:`~unireward.data.schema.PreferencePair` for type checking:
``data.export`` builds requests, so a run-time import of ``data`` would be a cycle).
"""

from unireward.request.errors import RequestError
from unireward.request.judge_request import (
    JudgeRequest,
    load_pair_media,
    media_inputs,
    pair_messages,
    validate_group,
)
from unireward.request.loading import load_medium
from unireward.request.order import count_media, group_share, media_order, swap_media
from unireward.request.rules import check_family, check_reference, check_samples

__all__ = [
    "JudgeRequest",
    "RequestError",
    "check_family",
    "check_reference",
    "check_samples",
    "count_media",
    "group_share",
    "load_medium",
    "load_pair_media",
    "media_inputs",
    "media_order",
    "pair_messages",
    "swap_media",
    "validate_group",
]

