"""How the command line ends when something goes wrong: one line for what a user caused, a report request for a bug.

- transferlab's own errors (bad option, bad file), a system error such as a read-only or full disk
  (OSError), running out of memory, and Ctrl-C end in one line on stderr and exit 2 (130 for Ctrl-C);
- anything else is a bug in transferlab: "internal error: …" with where to report it, exit 1;
- `--debug` (or TRANSFERLAB_DEBUG=1) also prints the traceback, for a bug report.

Example:
    >>> one_line(OSError(28, "No space left on device", "models/tgt/model.safetensors"))  # doctest: +ELLIPSIS
    'cannot write models/tgt/model.safetensors: No space left on device (errno 28 ENOSPC); free disk space...'
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Callable

from transferlab.errors import TransferlabError

DEBUG_ENV = "TRANSFERLAB_DEBUG"
REPORT = ("this is a bug in transferlab; please report it (an issue in the transferlab repository) with the command "
          "you ran and the output of the same command with --debug")

_OS_FIXES = {
    errno.ENOSPC: "free disk space or write to another disk (--out), then run the command again",
    errno.EDQUOT: "free space within your disk quota or write elsewhere (--out), then run the command again",
    errno.EROFS: "the file system is read-only; choose a writable folder (--out)",
    errno.EACCES: "you may not write or read there; choose a folder you own (--out) or fix its permissions",
    errno.EPERM: "the operation is not permitted there; choose a folder you own (--out) or fix its permissions",
    errno.ENOENT: "check the path; a folder on the way does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "the path is a folder where a file is expected; name a file",
    errno.ENAMETOOLONG: "use a shorter file or folder name",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or use fewer --jobs",
}


def debug_enabled() -> bool:
    """True when --debug was given or TRANSFERLAB_DEBUG is set to a non-empty value other than 0."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def flat(text: str) -> str:
    """A message on one line: runs of whitespace holding newlines become one space; C++ stack frames that a
    PyTorch error carries ("Exception raised from … frame #0: …") are cut off."""
    if "Exception raised from " in text:
        text = text.split("Exception raised from ")[0].rstrip() + " …"
    return " ".join(text.split()) if "\n" in text else text


def one_line(exc: BaseException) -> str:
    """The one-line message for an error a user caused (TransferlabError, OSError, MemoryError)."""
    if isinstance(exc, TransferlabError):
        return flat(str(exc))
    if isinstance(exc, MemoryError) or _is_allocation_failure(exc):
        return ("out of memory: the run asked for more memory than this machine allows; use a smaller --batch-size, "
                "--image-size or model, fewer --jobs, or a machine with more memory")
    if _is_sqlite_disk_failure(exc):
        return (f"cannot write the comparison's run store (runs.sqlite in --out): {exc}; free disk space or choose a "
                f"writable folder (--out), then run the same command again (finished cells are kept)")
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "")
        code = f" (errno {exc.errno} {name})" if exc.errno else ""
        target = exc.filename if exc.filename is not None else None
        action = "cannot write" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "cannot use"
        where = f"{action} {target}: " if target is not None else f"{action} a file: "
        fix = _OS_FIXES.get(exc.errno or 0, "check the path and the disk, then run the command again")
        return flat(f"{where}{exc.strerror or exc}{code}; {fix}")
    return flat(f"{type(exc).__name__}: {exc}")


# SQLite (compare's run store) reports a full or read-only disk in its own words, not as an OSError.
_SQLITE_DISK = ("disk I/O error", "database or disk is full", "attempt to write a readonly database",
                "unable to open database file", "readonly database")


def _is_sqlite_disk_failure(exc: BaseException) -> bool:
    import sqlite3

    return isinstance(exc, sqlite3.OperationalError) and any(text in str(exc) for text in _SQLITE_DISK)


def _is_allocation_failure(exc: BaseException) -> bool:
    """torch reports a failed allocation as RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc))


def user_caused(exc: BaseException) -> bool:
    """True for the errors that end in one line and exit 2."""
    return (isinstance(exc, (TransferlabError, OSError, MemoryError)) or _is_allocation_failure(exc)
            or _is_sqlite_disk_failure(exc))


def _prefix() -> str:
    rank = os.environ.get("RANK", "0")  # a process of a data-parallel run other than rank 0 says which
    return "error: " if rank == "0" else f"error (rank {rank}): "


def run_command(app: Callable[[], object]) -> int:
    """Run the CLI `app`; return its exit code, turning every exception into one line (see the module doc).

    `--debug` anywhere before a lone `--` is taken out of the arguments here (so it works after the
    command's name as well as before it) and sets TRANSFERLAB_DEBUG=1 for this process and its workers.
    """
    args = sys.argv[1:]
    cut = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:cut]:
        sys.argv = [sys.argv[0]] + [a for a in args[:cut] if a != "--debug"] + args[cut:]
        os.environ[DEBUG_ENV] = "1"
    try:
        app()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except KeyboardInterrupt:
        _print_traceback()
        print("interrupted; finished work is saved (compare resumes when the same command runs again)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 — the last line of defence: nothing may end in a bare traceback
        _print_traceback()
        if user_caused(exc):
            print(_prefix() + one_line(exc), file=sys.stderr)
            return 2
        print(f"internal error: {one_line(exc)}", file=sys.stderr)
        print(REPORT, file=sys.stderr)
        return 1
    return 0


def _print_traceback() -> None:
    if debug_enabled():
        traceback.print_exc()
