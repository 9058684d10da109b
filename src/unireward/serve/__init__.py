"""Serving a judge over HTTP."""

from unireward.serve.app import ServerLimits, create_app

__all__ = ["ServerLimits", "create_app"]
