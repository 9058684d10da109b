"""Moved to :mod:`unireward.runs.manifest`; this name stays so that old imports keep working (it is
the same module object, so patching one patches the other)."""

import sys

from unireward.runs import manifest as _manifest

sys.modules[__name__] = _manifest
