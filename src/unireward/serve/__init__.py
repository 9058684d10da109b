"""Serving a judge over HTTP."""

from unireward.serve.app import create_app
from unireward.serve.limits import ServerLimits

__all__ = ["ServerLimits", "create_app"]
