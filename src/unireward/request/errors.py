"""The one exception a judgment request raises for input its user can fix."""

from __future__ import annotations


class RequestError(ValueError):
    """A request that cannot be judged as given; ``field`` names the input to fix (``"reference"``,
    ``"candidates[1]"``, ``"template_family"``…). Unreadable media files stay
    :class:`unireward.media.MediaError`.

    >>> e = RequestError("image_editing needs the source image", "reference")
    >>> str(e), e.field, isinstance(e, ValueError)
    ('image_editing needs the source image', 'reference', True)
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field
