"""Open Image Preferences (data-is-better-together), binarized: text-to-image chosen/rejected pairs.

Layout: ``data-is-better-together/open-image-preferences-v1-binarized`` (about 7.4K rows, the size
the paper reports for OIP), parquet shards under ``data/``. Fields used: ``prompt``, ``chosen`` and
``rejected`` (images: a path string, or the parquet image struct ``{"bytes", "path"}``), and when
present ``chosen_model``, ``rejected_model``, ``category``. The card's feature list could not be read
from here (only the repository tree); these names follow the binarized preference convention and
should be checked against a downloaded shard. Chosen is always first in the source, so positions
are balanced by a hash of the id (see :class:`ConvertContext`).
"""

from __future__ import annotations

from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, require
from unireward.data.schema import PreferencePair
from unireward.protocol.tasks import Task


class OIPConverter(Converter):
    name = "oip"
    task = Task.IMAGE_GENERATION
    hub_id = "data-is-better-together/open-image-preferences-v1-binarized"
    files = ("data/*.parquet", "*.parquet", "*.jsonl", "*.json")

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        prompt, chosen, rejected = require(rec, "prompt", "chosen", "rejected")
        key = str(rec.get("id") or ref)
        c = ctx.media(chosen, "chosen", f"oip-{key}-chosen")
        r = ctx.media(rejected, "rejected", f"oip-{key}-rejected")
        cands, label = ctx.place(key, c, r)
        meta = {k: rec[k] for k in ("chosen_model", "rejected_model", "category", "sub_category") if rec.get(k)}
        return [self.make(id=f"oip-{key}", prompt=prompt, candidates=cands, label=label, meta=meta)]
