"""Serving a judge over HTTP.

``create_app`` loads on first use, so that importing ``unireward.serve.cli`` (every ``unireward``
command's start-up) does not import FastAPI, torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unireward.serve.limits import ServerLimits

if TYPE_CHECKING:
    from unireward.serve.app import create_app

__all__ = ["ServerLimits", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from unireward.serve.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
