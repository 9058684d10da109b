"""A key/value cache for batched generation that appends in place.

transformers' ``DynamicCache`` appends each decoding step with ``torch.cat``: every layer's whole
cache is copied into a fresh buffer, every step. At batch 8 with ~1000-token prompts that is
megabytes per layer per step, and on a CPU each fresh buffer is also page-faulted in; profiling the
batched judge at the mid size (4 pairs of 2 images, 48 new tokens) put ``torch.cat`` at 11% of the
call, growing with the output length, against 4% with this cache. The layers here
keep their keys and values in a buffer with room to spare (half again the length it must hold) and
write each step into it; attention sees the same values in the same shapes, so outputs do not change.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class GrowingLayer(DynamicLayer):
    """A :class:`DynamicLayer` whose ``keys``/``values`` are views into a larger buffer."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if getattr(self, "_view", None) is not self.keys:
            # first step, or crop/select/repeat replaced the tensors: the buffer starts from them
            have = self.keys.dim() == key_states.dim()
            self._k, self._v = (self.keys, self.values) if have else (None, None)
            self._n = self.keys.shape[-2] if have else 0
        need = self._n + key_states.shape[-2]
        if self._k is None or need > self._k.shape[-2]:
            self._k, self._v = (self._grow(old, new, need) for old, new in ((self._k, key_states), (self._v, value_states)))
        self._k[..., self._n : need, :].copy_(key_states)
        self._v[..., self._n : need, :].copy_(value_states)
        self._n = need
        self.keys, self.values = self._k[..., :need, :], self._v[..., :need, :]
        self._view = self.keys
        return self.keys, self.values

    def _grow(self, old: torch.Tensor | None, new: torch.Tensor, need: int) -> torch.Tensor:
        capacity = need + max(need // 2, 64)
        buf = new.new_empty(*new.shape[:-2], capacity, new.shape[-1])
        if old is not None and self._n:
            buf[..., : self._n, :].copy_(old[..., : self._n, :])
        return buf


class GrowingCache(DynamicCache):
    """``DynamicCache`` of :class:`GrowingLayer` for every full-attention layer of ``config``
    (sliding-window layers, which trim themselves, stay as transformers makes them)."""

    def __init__(self, config: Any):
        super().__init__(config=config)
        self.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in self.layers]
        if getattr(self, "layer_class_to_replicate", None) is DynamicLayer:  # layers made lazily
            self.layer_class_to_replicate = GrowingLayer


def cache_kwargs(model: Any) -> dict[str, Any]:
    """``generate`` keyword arguments handing ``model`` a fresh :class:`GrowingCache` (the keyword is
    ``cache`` in newer transformers, ``past_key_values`` before)."""
    try:
        cache = GrowingCache(model.config)
    except Exception:  # a model whose config the cache cannot read: transformers' own cache
        return {}
    params = inspect.signature(model.forward).parameters
    return {"cache" if "cache" in params else "past_key_values": cache}


def repeat_rows(cache: Any, n: int) -> None:
    """Repeat every row of ``cache`` ``n`` times in place (row r becomes rows r*n .. r*n+n-1).

    Uses each layer's own ``reorder_cache`` (the beam-search hook), which every layer kind has:
    key/value layers (this module's included: the next ``update`` starts a fresh buffer from the
    repeated tensors) and the linear-attention layers of hybrid models (Qwen3.5), whose conv and
    recurrent states ``batch_repeat_interleave`` does not cover.
    """
    if n == 1:
        return
    rows = next((t.shape[0] for t in _row_tensors(cache)), None)
    if rows is None:
        raise ValueError("cannot repeat an empty cache")
    index = torch.arange(rows).repeat_interleave(n)
    for layer in cache.layers:
        layer.reorder_cache(index)


def _row_tensors(cache: Any) -> Any:
    for layer in cache.layers:
        keys = getattr(layer, "keys", None)
        if isinstance(keys, torch.Tensor) and keys.dim() == 4:
            yield keys
        for state in (getattr(layer, "recurrent_states", None) or {}).values():
            if isinstance(state, torch.Tensor):
                yield state
