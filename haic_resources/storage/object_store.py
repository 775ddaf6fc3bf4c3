"""Bytes by key, in a local folder or under an S3 prefix: the one seam between us and storage."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from haic_resources.storage.files import TEMP_PREFIX, atomic_write_bytes


@dataclass(frozen=True)
class ObjectStat:
    """What a listing says of one object: its size, when it was last written (seconds since the
    epoch), and a tag that changes whenever it is rewritten (S3's ETag; None for local files)."""

    size: int
    modified_s: float
    etag: str | None = None


class ObjectStore(Protocol):
    uri: str

    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def get_file(self, key: str, target: Path) -> bool: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int | None: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def stat(self, prefix: str = "") -> dict[str, ObjectStat]: ...
    def delete(self, key: str) -> None: ...
    def move(self, source: str, target: str) -> None: ...
    def local_path(self, key: str) -> Path | None: ...


class LocalObjectStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} escapes the store")
        return path

    def put_bytes(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data)

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        if target == Path(path).resolve():
            return
        self.put_bytes(key, Path(path).read_bytes())

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def get_file(self, key: str, target: Path) -> bool:
        return _save_to(target, self.get_bytes(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def list(self, prefix: str = "") -> list[str]:
        base = self.root
        if not base.is_dir():
            return []
        keys = [p.relative_to(base).as_posix() for p in base.rglob("*")
                if p.is_file() and not p.name.startswith(TEMP_PREFIX)]
        return sorted(k for k in keys if k.startswith(prefix))

    def stat(self, prefix: str = "") -> dict[str, ObjectStat]:
        found = {}
        for key in self.list(prefix):
            try:
                info = (self.root / key).stat()
            except FileNotFoundError:  # removed since the listing
                continue
            found[key] = ObjectStat(info.st_size, info.st_mtime)
        return found

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def move(self, source: str, target: str) -> None:
        """Rename `source` to `target` in one step (a reader sees the old object or the new one)."""
        os.replace(self._path(source), self._path(target))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


class S3ObjectStore:
    def __init__(self, uri: str, client: Any):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3 uri: {uri!r}")
        self.uri = uri.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def get_file(self, key: str, target: Path) -> bool:
        return _save_to(target, self.get_bytes(key))

    def _head(self, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:  # botocore ClientError 404
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return int(head["ContentLength"]) if head else None

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.stat(prefix))

    def versions(self, prefix: str = "") -> dict[str, str]:
        """key -> ETag (changes whenever the object is rewritten), one listing for the prefix."""
        return {key: found.etag for key, found in self.stat(prefix).items()}

    def stat(self, prefix: str = "") -> dict[str, ObjectStat]:
        found: dict[str, ObjectStat] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", []):
                key = item["Key"]
                found[key[len(self.prefix) + 1:] if self.prefix else key] = ObjectStat(
                    int(item["Size"]), item["LastModified"].timestamp(), item["ETag"])
        return found

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def move(self, source: str, target: str) -> None:
        """S3 has no rename: a server-side copy (atomic for readers of `target`), then the delete."""
        self.client.copy_object(Bucket=self.bucket, Key=self._key(target),
                                CopySource={"Bucket": self.bucket, "Key": self._key(source)})
        self.delete(source)

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, expires_s: int) -> str:
        """A GET URL for one object that works without credentials until it expires (the annotation tool's
        browser pages play clips through it)."""
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                                                  ExpiresIn=int(expires_s))


def _save_to(target: Path, data: bytes | None) -> bool:
    """`get_file` of every store: the object's bytes written to `target`; False when there is no
    such object."""
    if data is None:
        return False
    atomic_write_bytes(target, data)
    return True


def open_object_store(uri: str, s3_client_factory=None) -> ObjectStore:
    if uri.startswith("s3://"):
        if s3_client_factory is None:
            raise ValueError(f"{uri} needs an S3 client (configure the s3 resource)")
        return S3ObjectStore(uri, s3_client_factory())
    return LocalObjectStore(Path(uri))
