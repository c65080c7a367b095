"""Problems the audit API answers (RFC 9457 slugs)."""

from __future__ import annotations

from gateway.api.paging import InvalidCursor as InvalidCursor  # the one cursor problem
from gateway.errors import InvalidInput, NotFound


class TreeSizeBeyondCheckpoint(InvalidInput):
    """The requested tree size is larger than the latest signed checkpoint."""

    slug = "tree-size-beyond-checkpoint"
    title = "Tree size beyond the latest checkpoint"


class LeafNotFound(NotFound):
    """No audit entry has this leaf hash."""

    slug = "leaf-not-found"
    title = "No entry with this leaf hash"


class LeafNotSequenced(NotFound):
    """The entry exists but has no index yet; the sequencer gives it one within a second."""

    slug = "leaf-not-sequenced"
    title = "The entry is not sequenced yet"
