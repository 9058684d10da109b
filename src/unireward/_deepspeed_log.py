"""DeepSpeed's logger writes to stdout (a notice on every import where no GPU is seen), where our
commands print their JSON: its records go to stderr instead. Imported first by the package."""

import logging
import sys


class _ToStderr(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(logging.Formatter("[DeepSpeed] %(levelname)s %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.getLogger("DeepSpeed").getEffectiveLevel():
            self.handler.stream = sys.stderr  # the stream of the moment (test runners swap it)
            self.handler.handle(record)
        return False


_logger = logging.getLogger("DeepSpeed")
if not any(isinstance(f, _ToStderr) for f in _logger.filters):
    _logger.addFilter(_ToStderr())
