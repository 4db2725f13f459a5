"""File-name operations of an ``exporttree=yes`` S3 remote (git-annex ``Remote/S3.hs``).

An exported file ``path`` is the object ``fileprefix + path`` in the bucket (git-annex's
``bucketExportLocation``), written, read, tested and deleted with the `S3Backend`'s
streaming uploads and reads. S3 cannot rename: a rename is a server-side copy followed
by a delete of the source, as git-annex's ``renameExportS3`` does. Buckets with
versioning are not treated specially.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from annexproxy.special.backend import StoreSession
from annexproxy.special.exportactions import check_location
from annexproxy.special.s3 import ExportName, S3Backend


class S3Export:
    """`ExportActions` on an S3 bucket, through an `S3Backend`."""

    def __init__(self, backend: S3Backend) -> None:
        """Use ``backend``'s client and settings; it is closed by its owner."""
        self.backend = backend

    def store(
        self, location: str, size: int | None = None
    ) -> AbstractAsyncContextManager[StoreSession]:
        """Upload ``fileprefix + location`` (one PUT, or multipart when large/unknown)."""
        return self.backend.store(ExportName(check_location(location)), size)

    def retrieve(self, location: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Read the object from ``offset``."""
        return self.backend.retrieve(ExportName(check_location(location)), offset)

    def local_path(self, location: str) -> Path | None:
        """S3 objects have no local file."""
        return None

    async def present(self, location: str) -> bool:
        """Whether the object exists (a HEAD request)."""
        return await self.backend.present(ExportName(check_location(location)))

    async def remove(self, location: str) -> None:
        """Delete the object (S3 has no directories to prune)."""
        await self.backend.remove(ExportName(check_location(location)))

    async def rename(self, source: str, dest: str) -> None:
        """Copy the object within the bucket, then delete the source.

        Raises:
            StorageError: the copy or the delete failed (a missing source included).
        """
        src, dst = ExportName(check_location(source)), ExportName(check_location(dest))
        await self.backend.copy(src, dst)
        await self.backend.remove(src)
