"""Where the Parquet store's files live: a local folder, or an S3 bucket (or any
S3-compatible server: MinIO, Ceph, R2).

Both sides give the store the same few operations on locations written as strings
(`/var/lib/tars/store/samples/...` or `s3://bucket/prefix/samples/...`):

- `publish(local_file, location)`: make a finished local file the object at `location`,
  whole or not at all. Locally a rename over the old file (atomic on POSIX); on S3 one
  PUT, which S3 applies atomically (a reader gets the old object or the new one).
- `readable(locations)`: local paths DuckDB can read that keep naming the files as they
  were when asked, while writers replace them: locally the open descriptors'
  /proc/self/fd paths (DuckDB opens a file more than once per read), on S3 one GET of
  each object into a temporary folder (one consistent version per file).
- `files(folder, pattern)`, `exists`, `read_text`, `write_text` (atomic as above).

S3 takes its credentials and region the usual way (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_REGION, an instance or pod role);
`store_endpoint_url` in tars.yaml (or AWS_ENDPOINT_URL) points it at another server.
s3fs is an optional dependency (`pip install 'tars-observability[s3]'`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from tars_pipeline.errors import TarsUserError


def is_remote(root: str | Path) -> bool:
    return str(root).startswith("s3://")


class Files(Protocol):
    def join(self, *parts: str) -> str: ...
    def exists(self, location: str) -> bool: ...
    def read_text(self, location: str) -> str: ...
    def write_text(self, location: str, text: str) -> None: ...
    def publish(self, local_file: Path, location: str) -> None: ...
    def files(self, folder: str, pattern: str) -> list[str]: ...
    def scratch(self, location: str) -> Path: ...
    def readable(self, locations: list[str]) -> contextlib.AbstractContextManager[list[str]]: ...


class LocalFiles:
    """A folder on this machine (or a shared volume mounted here)."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(Path(root))

    def join(self, *parts: str) -> str:
        return str(Path(self.root, *parts))

    def exists(self, location: str) -> bool:
        return Path(location).exists()

    def read_text(self, location: str) -> str:
        return Path(location).read_text(encoding="utf-8")

    def write_text(self, location: str, text: str) -> None:
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        aside.write_text(text, encoding="utf-8")
        aside.replace(path)

    def scratch(self, location: str) -> Path:
        """Where to write `location`'s next version: beside it, so the rename is atomic."""
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".part-{uuid.uuid4().hex}.tmp")

    def publish(self, local_file: Path, location: str) -> None:
        local_file.replace(location)

    def files(self, folder: str, pattern: str) -> list[str]:
        base = Path(folder)
        return [str(path) for path in sorted(base.glob(pattern))] if base.is_dir() else []

    @contextlib.contextmanager
    def readable(self, locations: list[str]) -> Iterator[list[str]]:
        if not Path("/proc/self/fd").is_dir():
            yield list(locations)  # elsewhere a read racing a replace may fail
            return
        descriptors: list[int] = []
        try:
            for location in locations:
                descriptors.append(os.open(location, os.O_RDONLY))
            yield [f"/proc/self/fd/{fd}" for fd in descriptors]
        finally:
            for fd in descriptors:
                os.close(fd)


class S3Files:
    """A prefix in an S3 bucket, through s3fs."""

    def __init__(self, root: str, endpoint_url: str | None = None) -> None:
        try:
            import s3fs
        except ImportError:
            raise TarsUserError(
                f"the store is on object storage ({root}) but s3fs is not installed",
                where="store_url",
                remedy="pip install 'tars-observability[s3]' (s3fs), or keep the store on "
                "a local or mounted folder",
            ) from None
        self.root = root.rstrip("/")
        options: dict[str, Any] = {}
        endpoint = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        if endpoint:
            options["endpoint_url"] = endpoint
        # No listing cache: another process's new partition must show at once.
        self.fs = s3fs.S3FileSystem(use_listings_cache=False, client_kwargs=options)
        self._scratch = Path(tempfile.mkdtemp(prefix="tars-s3-"))

    def join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _key(self, location: str) -> str:
        return location.removeprefix("s3://")

    def exists(self, location: str) -> bool:
        return bool(self.fs.exists(self._key(location)))

    def read_text(self, location: str) -> str:
        with self.fs.open(self._key(location), "rb") as handle:
            return handle.read().decode("utf-8")

    def write_text(self, location: str, text: str) -> None:
        self.fs.pipe_file(self._key(location), text.encode("utf-8"))  # one PUT

    def scratch(self, location: str) -> Path:
        return self._scratch / f"part-{uuid.uuid4().hex}.tmp"

    def publish(self, local_file: Path, location: str) -> None:
        try:
            self.fs.put_file(str(local_file), self._key(location))  # one PUT: whole or none
        finally:
            local_file.unlink(missing_ok=True)

    def files(self, folder: str, pattern: str) -> list[str]:
        found = self.fs.glob(f"{self._key(folder)}/{pattern}")
        return [f"s3://{key}" for key in sorted(found)]

    @contextlib.contextmanager
    def readable(self, locations: list[str]) -> Iterator[list[str]]:
        folder = Path(tempfile.mkdtemp(dir=self._scratch))
        try:
            local = [str(folder / f"{index}.parquet") for index in range(len(locations))]
            if locations:
                self.fs.get([self._key(loc) for loc in locations], local)
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)


def files_for(root: str | Path, endpoint_url: str | None = None) -> LocalFiles | S3Files:
    return S3Files(str(root), endpoint_url) if is_remote(root) else LocalFiles(root)
