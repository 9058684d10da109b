"""Moved to :mod:`unireward.runs.rows`; this name stays so that old imports keep working (it is the
same module object, so patching one patches the other)."""

import sys

from unireward.runs import rows as _rows

sys.modules[__name__] = _rows
