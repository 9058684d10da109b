"""What every judge offers, model-backed or not (baselines, HTTP endpoints, local models)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence

from unireward.data.schema import PreferencePair
from unireward.protocol.parser import Judgment


class BaseJudge(ABC):
    #: a short name used in reports, e.g. "baseline:shorter" or a model path
    name: str = "judge"

    @abstractmethod
    def compare_batch(
        self, pairs: Sequence[PreferencePair], media_root: str | os.PathLike[str] | None = None
    ) -> list[Judgment]:
        """One judgment per pair, in order. A pair whose media cannot be loaded gets a judgment
        with ``status="invalid"`` and the :class:`MediaError` text in ``reason``; it never raises
        for one bad item."""
