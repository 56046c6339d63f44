"""What transferlab wrote, so that it never deletes or replaces anything it did not write.

Every folder transferlab fills with outputs (a comparison's --out, explain's --out, a comparison's
`models/` and `checkpoints/`) holds a manifest, `.transferlab-manifest.json`, listing the paths it
wrote there (recorded *before* each file is written, so a kill can only leave a listed name without
its file, never the other way round). A model folder is its own manifest: its config.json names the
files transferlab writes into it (config.json, model.safetensors, README.md, the source head).

Before an output folder is written into, replaced (--overwrite) or cleared (--force), anything in it
that is not covered — a user's file, a symbolic link, a folder nobody listed — makes the command stop
with a one-line error naming those files, before anything is changed.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..errors import ArtifactError, ConfigError

MANIFEST = ".transferlab-manifest.json"
MANIFEST_FORMAT = "transferlab.manifest"
STORE_MARKER = ".transferlab-store-entry.json"  # written by the model store into each folder it creates
MODEL_FILES = ("config.json", "model.safetensors", "README.md")
SOURCE_HEAD_FILE = "source_head.safetensors"
# The longest suffix transferlab adds to a name for its temporary files and folders:
# ".NAME.tmp-PID-XXXXXXXX" (atomic_folder, pid up to 7 digits) and ".NAME.PID.XXXXXXXX.tmp" (atomic_write).
TEMP_NAME_EXTRA = 24
_STALE = re.compile(r"(?:tmp-|old-)?\d+[.-]")


def check_name_length(path: str | Path, what: str = "--out") -> None:
    """Refuse a path whose last name (plus transferlab's temporary-name suffix) or whole length the system can't hold.

    Checked before any work, so a run never trains for an hour and then fails to save.
    """
    path = Path(path)
    name = os.fsencode(path.name)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        name_max = os.pathconf(parent, "PC_NAME_MAX")
        path_max = os.pathconf(parent, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    limit = name_max - TEMP_NAME_EXTRA
    if len(name) > limit:
        shown = path.name if len(path.name) <= 40 else path.name[:37] + "…"
        raise ConfigError(f"{what} name {shown!r} is {len(name)} bytes long; at most {limit} are allowed here (the "
                          f"file system allows {name_max} per name and transferlab's temporary names add "
                          f"{TEMP_NAME_EXTRA}); choose a shorter name")
    full = len(os.fsencode(os.path.abspath(path))) + TEMP_NAME_EXTRA + 64  # + the files written inside
    if full > path_max:
        raise ConfigError(f"{what} path is {full - TEMP_NAME_EXTRA - 64} bytes long; at most "
                          f"{path_max - TEMP_NAME_EXTRA - 64} are allowed here; choose a shorter path")


def read_manifest(folder: Path) -> set[str] | None:
    """The paths (relative, '/'-separated; '*' patterns allowed) a folder's manifest lists; None without one."""
    file = Path(folder) / MANIFEST
    if not file.is_file() or file.is_symlink():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("paths"), list):
        return None
    return {p for p in data["paths"] if isinstance(p, str)}


def record(folder: Path, paths: Iterable[str]) -> None:
    """Add `paths` to the folder's manifest (created if missing) before they are written."""
    from .files import write_text_atomic

    folder = Path(folder)
    listed = read_manifest(folder) or set()
    new = listed | set(paths)
    if new == listed and (folder / MANIFEST).is_file():
        return
    body = {"format": MANIFEST_FORMAT, "note": "files and folders transferlab wrote here; it removes or replaces "
            "only these", "paths": sorted(new)}
    write_text_atomic(folder / MANIFEST, json.dumps(body, indent=1) + "\n")


def model_files(folder: Path) -> set[str] | None:
    """The files transferlab writes into a model folder, by its config.json; None if it is not a model folder."""
    config = Path(folder) / "config.json"
    if not config.is_file() or config.is_symlink():
        return None
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != "transferlab.model":
        return None
    return set(MODEL_FILES) | ({SOURCE_HEAD_FILE} if data.get("source_head") else set())


def _is_stale_temp(name: str, listed_names: Iterable[str]) -> bool:
    """A temporary file or folder a killed transferlab writer left for one of the listed names."""
    return any(name.startswith(f".{base}.") and _STALE.match(name[len(base) + 2:]) for base in listed_names)


def _covered(rel: str, listed: set[str]) -> bool:
    return rel in listed or any(("*" in p or "?" in p) and fnmatch.fnmatchcase(rel, p) for p in listed)


def foreign_entries(folder: Path, listed: set[str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Paths inside `folder` transferlab did not write (relative), in order; [] means all of it is transferlab's.

    `listed` overrides the folder's manifest (used for older folders written before manifests); a model
    folder is covered by its config.json. Symbolic links are never transferlab's.
    """
    folder = Path(folder)
    files = model_files(folder)
    if listed is None and files is not None:
        listed = files | set(extra)
    if listed is None:
        listed = read_manifest(folder)
        if listed is None:
            return sorted(p.name for p in folder.iterdir())
        listed = listed | {MANIFEST} | set(extra)
    return _walk(folder, folder, listed)


def _walk(root: Path, folder: Path, listed: set[str]) -> list[str]:
    found: list[str] = []
    children = sorted(folder.iterdir())
    here = [p.rsplit("/", 1)[-1] for p in listed
            if (p.rsplit("/", 1)[0] if "/" in p else "") == ("" if folder == root else folder.relative_to(root).as_posix())]
    for child in children:
        rel = child.relative_to(root).as_posix()
        if child.is_symlink() or not (_covered(rel, listed) or _is_stale_temp(child.name, here)):
            found.append(rel)
        elif child.is_dir():
            if model_files(child) is not None:  # a model folder transferlab wrote: its own config.json lists it
                found += [f"{rel}/{p}" for p in foreign_entries(child)]
            elif child.name.startswith("."):  # a killed writer's temporary folder: transferlab's whole
                continue
            else:
                found += _walk(root, child, listed)
    return found


def refuse_foreign(folder: Path, foreign: list[str], what: str, fix: str) -> None:
    """Raise a one-line error naming what in `folder` transferlab did not write."""
    if not foreign:
        return
    shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
    raise ArtifactError(f"{what} {folder} holds files transferlab did not write ({shown}); it never replaces or "
                        f"removes those — {fix}")


def output_folder(out: str | Path, what: str = "--out") -> Path:
    """Check an output folder before any work: a folder (or nothing yet), a name the system can hold.

    A symbolic link to a folder stands for its target. Returns the path to write to.
    """
    out = Path(out)
    check_name_length(out, what)
    if out.is_symlink():
        target = out.resolve()
        if target.exists() and not target.is_dir():
            raise ConfigError(f"{what} {out} links to the file {target}; pass a folder path")
        out = target
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{what} {out} is a file; {what} takes a folder path (a new or empty folder, or one "
                          "transferlab wrote) — choose another path")
    return out


def remove_owned(folder: Path, rel: str) -> None:
    """Remove `folder/rel`, which a foreign_entries check just found to be transferlab's only."""
    path = Path(folder) / rel
    if path.is_symlink():
        path.unlink()
    elif not path.exists():
        return
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def os_error_message(err: OSError, path: Path, doing: str) -> str:
    """One line for an OSError while writing: the path, the reason, and the fix."""
    reason = err.strerror or str(err)
    fix = {errno.EACCES: "make it writable or choose another location", errno.EROFS: "choose a writable location",
           errno.ENOSPC: "free some space or choose another disk", errno.ENOTDIR: "a part of the path is a file; "
           "choose another path", errno.EEXIST: "a file is in the way; choose another path"}.get(err.errno, "choose another location")
    return f"cannot {doing} {path}: {reason}; {fix}"
