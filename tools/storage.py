"""Each organization's file storage under ``MEDIA_ROOT/orgs/<id>/``.

SECURITY: a path is a relative, ``/``-separated name checked component by
component (no ``..``, no empty or hidden-control names, no NUL, no
backslash) and then opened by walking directory file descriptors with
``O_NOFOLLOW``, so neither ``..`` nor a symlink planted anywhere in the tree
can lead outside the organization's root, even if the tree changes between a
check and a use.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from tools.errors import ToolFailed, ToolRefused

MAX_COMPONENTS = 32
MAX_NAME = 255
MAX_PATH = 1024
DEFAULT_READ_LIMIT = 10 * 1024 * 1024

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefused(ToolRefused):
    code = "path_refused"


@dataclass(frozen=True)
class Entry:
    name: str
    path: str
    is_dir: bool
    size: int
    modified: float


def split_path(path: str, *, allow_root: bool = False) -> list[str]:
    """The checked components of ``path`` (relative to the organization's root)."""
    if not isinstance(path, str):
        raise PathRefused("a path must be a string")
    if len(path) > MAX_PATH:
        raise PathRefused("the path is too long")
    if "\x00" in path or "\\" in path:
        raise PathRefused("the path holds a forbidden character")
    if path.startswith(("/", "~")):
        raise PathRefused("the path must be relative to the organization's storage")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts and not allow_root:
        raise PathRefused("name a file")
    if len(parts) > MAX_COMPONENTS:
        raise PathRefused("the path is too deep")
    for part in parts:
        if part == "..":
            raise PathRefused("the path may not go up ('..')")
        if len(part) > MAX_NAME:
            raise PathRefused("a path component is too long")
        if any(ord(ch) < 32 for ch in part):
            raise PathRefused("the path holds a control character")
    return parts


class OrgStorage:
    """Files of one organization. Every method takes a relative path."""

    def __init__(self, organization_id: int, *, root: Path | None = None) -> None:
        self.organization_id = organization_id
        self.root = (root or Path(settings.MEDIA_ROOT)) / "orgs" / str(int(organization_id))

    # --- descriptors ---------------------------------------------------------------

    def _root_fd(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.root.is_symlink():
            raise ToolFailed("the organization's storage root is a symlink")
        return os.open(self.root, _DIR_FLAGS)

    @contextmanager
    def _dir(self, parts: list[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory ``parts`` (walked with O_NOFOLLOW)."""
        fd = self._root_fd()
        try:
            for part in parts:
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with suppress(FileExistsError):
                        os.mkdir(part, 0o750, dir_fd=fd)
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise PathRefused(f"{'/'.join(parts)!r} passes through a link or a file") from exc
                    raise
                os.close(fd)
                fd = next_fd
            yield fd
        finally:
            os.close(fd)

    def _lstat(self, dir_fd: int, name: str) -> os.stat_result:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)

    # --- operations ----------------------------------------------------------------

    def read(self, path: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        parts = split_path(path)
        try:
            with self._dir(parts[:-1]) as dir_fd:
                try:
                    fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        raise PathRefused(f"{path!r} is a link") from exc
                    raise
                with os.fdopen(fd, "rb") as handle:
                    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                        raise PathRefused(f"{path!r} is not a file")
                    data = handle.read(limit + 1)
        except FileNotFoundError as exc:
            raise ToolFailed(f"no file {path!r}", code="not_found") from exc
        if len(data) > limit:
            raise ToolFailed(f"{path!r} is larger than {limit} bytes", code="too_large")
        return data

    def write(self, path: str, data: bytes, *, overwrite: bool = True) -> Entry:
        parts = split_path(path)
        with self._dir(parts[:-1], create=True) as dir_fd:
            name = parts[-1]
            try:
                existing = self._lstat(dir_fd, name)
            except FileNotFoundError:
                existing = None
            if existing is not None:
                if not stat.S_ISREG(existing.st_mode):
                    raise PathRefused(f"{path!r} exists and is not a plain file")
                if not overwrite:
                    raise ToolFailed(f"{path!r} exists", code="exists")
            tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.part"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640,
                         dir_fd=dir_fd)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=dir_fd)
                raise
            st = self._lstat(dir_fd, name)
        return Entry(name=name, path="/".join(parts), is_dir=False, size=st.st_size, modified=st.st_mtime)

    def exists(self, path: str) -> bool:
        parts = split_path(path)
        try:
            with self._dir(parts[:-1]) as dir_fd:
                self._lstat(dir_fd, parts[-1])
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def list(self, path: str = "") -> list[Entry]:
        parts = split_path(path, allow_root=True)
        entries: list[Entry] = []
        try:
            with self._dir(parts) as dir_fd:
                for name in sorted(os.listdir(dir_fd)):
                    if name.endswith(".part") and name.startswith("."):
                        continue
                    st = self._lstat(dir_fd, name)
                    if stat.S_ISLNK(st.st_mode):
                        continue  # never shown, never followed
                    entries.append(
                        Entry(
                            name=name,
                            path="/".join([*parts, name]),
                            is_dir=stat.S_ISDIR(st.st_mode),
                            size=st.st_size,
                            modified=st.st_mtime,
                        )
                    )
        except FileNotFoundError as exc:
            raise ToolFailed(f"no folder {path!r}", code="not_found") from exc
        return entries

    def delete(self, path: str) -> None:
        parts = split_path(path)
        try:
            with self._dir(parts[:-1]) as dir_fd:
                st = self._lstat(dir_fd, parts[-1])
                if stat.S_ISDIR(st.st_mode):
                    try:
                        os.rmdir(parts[-1], dir_fd=dir_fd)
                    except OSError as exc:
                        raise ToolFailed(f"the folder {path!r} is not empty", code="not_empty") from exc
                else:
                    os.unlink(parts[-1], dir_fd=dir_fd)
        except FileNotFoundError as exc:
            raise ToolFailed(f"no file {path!r}", code="not_found") from exc

    def move(self, source: str, destination: str, *, overwrite: bool = False) -> Entry:
        src = split_path(source)
        dst = split_path(destination)
        if dst[: len(src)] == src:
            raise PathRefused("a folder cannot move into itself")
        try:
            with self._dir(src[:-1]) as src_fd, self._dir(dst[:-1], create=True) as dst_fd:
                st = self._lstat(src_fd, src[-1])
                if stat.S_ISLNK(st.st_mode):
                    raise PathRefused(f"{source!r} is a link")
                try:
                    self._lstat(dst_fd, dst[-1])
                    if not overwrite:
                        raise ToolFailed(f"{destination!r} exists", code="exists")
                except FileNotFoundError:
                    pass
                os.rename(src[-1], dst[-1], src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                moved = self._lstat(dst_fd, dst[-1])
        except FileNotFoundError as exc:
            raise ToolFailed(f"no file {source!r}", code="not_found") from exc
        return Entry(
            name=dst[-1],
            path="/".join(dst),
            is_dir=stat.S_ISDIR(moved.st_mode),
            size=moved.st_size,
            modified=moved.st_mtime,
        )


def storage_for(organization_id: int) -> OrgStorage:
    return OrgStorage(organization_id)
