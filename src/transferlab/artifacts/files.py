"""Atomic writes: a file or a folder appears complete under its final name, or not at all.

Every file is written to a temporary name in its own folder, flushed and fsynced, then renamed over
the final name; a folder is built in a temporary folder beside its destination and swapped in. A
process killed at any moment leaves the previous version loadable. Temporary names carry the
writer's pid, so the next write to the same destination removes what a dead writer left behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified_safetensors(file: Path, expected_sha256: str | None) -> dict:
    """The tensors of a safetensors file whose sha256 must equal the one its config.json records."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..errors import ArtifactError

    actual = sha256_file(file)
    if actual != expected_sha256:
        raise ArtifactError(
            f"{file} fails its checksum: config.json expects sha256 {expected_sha256} but the file has {actual}; "
            "the file is truncated or modified — restore it from the original"
        )
    try:
        return load_file(str(file))
    except SafetensorError as err:
        raise ArtifactError(f"{file} is not a readable safetensors file: {err}") from err


def write_bytes_synced(path: Path, data: bytes) -> None:
    """Write, flush and fsync one file (inside a folder that is renamed into place afterwards)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_path(path: Path) -> None:
    """Flush a file another library wrote (safetensors, shutil.copy2), or a folder's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale(dest: Path) -> None:
    """Remove temporary siblings of `dest` left by writers that were killed (their pid is gone)."""
    pattern = re.compile(rf"^\.{re.escape(dest.name)}\.(?:tmp-|old-|)(\d+)[.-]")
    try:
        siblings = list(dest.parent.iterdir())
    except OSError:
        return
    for item in siblings:
        match = pattern.match(item.name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically: `write(f)` fills a temporary file in the same folder, fsynced, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            recording = _WriteErrors(f, path)
            try:
                write(recording)  # type: ignore[arg-type]
            except Exception as exc:
                if recording.error is not None and recording.error is not exc:
                    raise recording.error from None  # torch.save reports a full disk as "unexpected pos": say ENOSPC
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed flush or close names no file: name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class _WriteErrors:
    """A file that remembers the OSError of a failed write, so a library that hides it can be seen through."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self._f, self._path = f, path
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc if exc.filename is not None else OSError(exc.errno, exc.strerror, str(self._path))
            raise

    def __getattr__(self, name: str):
        return getattr(self._f, name)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    Returns False where the C library, kernel or filesystem has no such call; the caller then falls
    back to two renames.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without renameat2 (glibc < 2.28)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextmanager
def atomic_folder(dest: Path, *, replace: bool) -> Iterator[Path]:
    """Yield a temporary folder beside `dest`; on success move it to `dest` (replacing it if `replace`).

    If the body raises, the temporary folder is removed and `dest` is untouched. An existing `dest`
    is swapped with the new folder in one atomic rename (Linux), so a reader finds the old folder or
    the new one, never neither; where the system cannot swap, the old folder is moved aside first and
    deleted only after the new one is in place.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{os.getpid()}-", dir=dest.parent))
    try:
        yield tmp
        fsync_path(tmp)
        if replace and dest.is_dir() and not dest.is_symlink() and _exchange(tmp, dest):
            fsync_path(dest.parent)
            shutil.rmtree(tmp, ignore_errors=True)  # it holds the old folder now
            return
        old = None
        if dest.exists() and replace:
            old = dest.parent / f".{dest.name}.old-{os.getpid()}-"
            os.replace(dest, old)
        os.replace(tmp, dest)
        fsync_path(dest.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
