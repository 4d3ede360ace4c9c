"""Call recordings as WAV files on disk: `<root>/<call_id>.wav` (PROTOCOL.md 1.8).

Files are named by the canonical (lower-case) UUID of the call, so an id from a
URL can never name a path outside `root`. Writes are atomic: a reader sees no
file or the whole file, never half of one. The methods do blocking file I/O;
callers on an event loop run `save` for long recordings in a thread
(`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from pathlib import Path

__all__ = ["RecordingStore"]

logger = logging.getLogger(__name__)


class RecordingStore:
    """The recordings folder of one server; `root` is created on the first save."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(self, call_id: str, wav_bytes: bytes) -> None:
        """Write (or replace) the call's recording atomically.

        Raises:
            ValueError: `call_id` is not a UUID.
        """
        target = self._file(call_id)
        if target is None:
            raise ValueError(f"call id is not a UUID: {call_id!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same folder, then rename: os.replace is atomic on one file system.
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=f".{target.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(wav_bytes)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        logger.info("saved recording of call %s (%d bytes)", target.stem, len(wav_bytes))

    def path(self, call_id: str) -> Path | None:
        """The recording's path, or None when there is none (or `call_id` is not a UUID)."""
        target = self._file(call_id)
        return target if target is not None and target.is_file() else None

    def delete(self, call_id: str) -> None:
        """Remove the call's recording; a missing one (or a non-UUID id) is not an error."""
        target = self._file(call_id)
        if target is not None:
            target.unlink(missing_ok=True)

    def _file(self, call_id: str) -> Path | None:
        try:
            canonical = str(uuid.UUID(call_id))
        except (ValueError, TypeError, AttributeError):
            return None
        return self.root / f"{canonical}.wav"
