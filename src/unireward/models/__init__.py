"""Model families, loading, and tiny offline models for tests and the demo."""

from unireward.models import llava_onevision as _llava_onevision  # noqa: F401  (registers the family)
from unireward.models import qwen2_5_vl as _qwen2_5_vl  # noqa: F401  (registers the family)
from unireward.models import qwen3_5 as _qwen3_5  # noqa: F401
from unireward.models import qwen3_vl as _qwen3_vl  # noqa: F401
from unireward.models.family import (
    ModelFamily,
    ModelLoadError,
    detect_family,
    get_family,
    list_families,
    load_model,
)

__all__ = ["ModelFamily", "ModelLoadError", "detect_family", "get_family", "list_families", "load_model"]
