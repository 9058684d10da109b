"""Start the page: examples written, queue on, loopback by default, optional basic auth, offline."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unireward.app.examples import build_examples
from unireward.app.layout import CSS, AppSettings, build_app, theme
from unireward.judge.judge import Judge

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerOptions:
    """Where and for whom the page is served."""

    host: str = "127.0.0.1"
    port: int = 7860
    #: ``(user, password)`` for HTTP basic auth, or ``None`` for none
    auth: tuple[str, str] | None = None
    examples: bool = True
    #: the largest upload in bytes (Gradio answers 413 above it); ``None``: the judge's own limit on a
    #: media file (``VisionBudget.max_file_bytes``), so nothing it would refuse is written to disk
    max_file_size: int | None = None
    #: uploads older than this many seconds are deleted (checked every ``upload_ttl_s / 4``)
    upload_ttl_s: int = 3600

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if self.max_file_size is not None and self.max_file_size < 1:
            raise ValueError(f"max_file_size must be >= 1 byte, got {self.max_file_size}")
        if self.upload_ttl_s < 4:
            raise ValueError(f"upload_ttl_s must be >= 4 seconds, got {self.upload_ttl_s}")
        if self.auth is not None and (len(self.auth) != 2 or not all(self.auth)):
            raise ValueError("auth needs a non-empty user and password")


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``USER:PASSWORD`` as a pair (the password may contain colons).

    >>> parse_auth("ana:s3:cret"), parse_auth(None)
    (('ana', 's3:cret'), None)
    """
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must be USER:PASSWORD")
    return user, password


def serve(judge: Judge, options: ServerOptions, settings: AppSettings | None = None, block: bool = True) -> Any:
    """Build and launch the page; returns the running Blocks (``block=False``: the caller closes it).

    Examples are written to a temporary folder the page may serve files from; nothing else on disk
    is exposed.
    """
    settings = settings or AppSettings()
    allowed: list[str] = []
    if options.examples and not settings.examples:
        folder = Path(tempfile.mkdtemp(prefix="unireward-app-examples-"))
        settings.examples = build_examples(folder)
        allowed.append(str(folder))
    if options.host not in LOOPBACK and options.auth is None:
        log.warning("serving on %s without --auth: anyone who can reach it can use the judge", options.host)
    app = build_app(judge, settings)
    # Gradio stores every upload before any handler sees it: bound its size by what the judge would
    # read, and age out old uploads so repeated ones cannot fill the disk
    max_file_size = options.max_file_size or judge.budget.max_file_bytes
    app.delete_cache = (max(1, options.upload_ttl_s // 4), options.upload_ttl_s)
    app.queue(default_concurrency_limit=settings.concurrency)
    app.launch(
        server_name=options.host, server_port=options.port, auth=options.auth, share=False,
        prevent_thread_lock=not block, show_error=True, quiet=True, ssr_mode=False, mcp_server=False,
        allowed_paths=allowed, theme=theme(), css=CSS, footer_links=["api"], enable_monitoring=False,
        max_file_size=max_file_size,
    )  # fmt: skip
    log.info("uploads: at most %d bytes each, deleted after %d s", max_file_size, options.upload_ttl_s)
    return app
