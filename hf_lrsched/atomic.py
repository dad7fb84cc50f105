"""Files and folders written so that a kill, a full disk or an error never leaves one half written: the learning-rate
curve and the plots of hf_lrsched, the Trainer's snapshots, and the examples' results and checkpoints all go through
these three functions.

```python
from hf_lrsched.atomic import replace_folder, write_file, write_text

write_text("out/all_results.json", json.dumps(results))
model.save_pretrained("out/snapshot-40.tmp")
replace_folder("out/snapshot-40.tmp", "out/snapshot-40")
```
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from typing import IO

__all__ = ["replace_folder", "write_file", "write_text"]


def write_file(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """
    Call `write` with a binary file whose bytes end up at `path`, so that a kill or an error never leaves a
    truncated file nor a temporary one behind: a regular file (or a new one) is written to a temporary file in the
    same directory, flushed to disk and renamed over it, keeping the old file's permissions; a symbolic link keeps
    pointing where it did, at the new file; a character device or a pipe (`/dev/null`, `/dev/stdout`) is written
    into, never replaced. Anything else (a directory, a block device, a socket) is refused.

    Args:
        path (`str` or `os.PathLike`):
            The file to write.
        write (`Callable[[IO[bytes]], object]`):
            Writes the contents into the binary file it is given.

    Raises:
        `ValueError`: for an empty path, or one that names something other than a file, a device or a pipe.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("The output path is empty: give a file name, such as 'lr.png'.")
    target = os.path.realpath(path)  # a symlink's target is replaced, the link kept
    if os.path.exists(target) and not os.path.isfile(target):
        mode = os.stat(target).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ValueError(f"{path!r} is {kind}: give the name of a file to write.")
        with open(target, "wb") as f:
            write(f)
        return
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(target):
            mode = stat.S_IMODE(os.stat(target).st_mode)
        else:  # as `open(path, "w")` would have created it
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """
    Write `text` (UTF-8, newlines as given) to `path` as [`write_file`][hf_lrsched.atomic.write_file] does: whole,
    or not at all.

    Args:
        path (`str` or `os.PathLike`):
            The file to write.
        text (`str`):
            Its contents.
    """
    data = text.encode("utf-8")
    write_file(path, lambda f: f.write(data))


def replace_folder(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """
    Put the complete folder `tmp` in the place of `path` (a checkpoint, a snapshot). A folder already at `path` is
    moved aside to `<path>.old` and deleted only once `tmp` is in place, and put back if the rename fails: at every
    moment one complete copy exists, at `path` or (between the two renames) at `<path>.old`. A symbolic link at
    `path` is replaced by the folder; the folder it pointed to is left as it was.

    Args:
        tmp (`str` or `os.PathLike`):
            The folder, written in full, beside `path` (on the same file system).
        path (`str` or `os.PathLike`):
            Where it goes.

    Raises:
        `OSError`: when a rename fails; `path` then holds what it held before.
    """
    path = os.path.normpath(os.fspath(path))
    old = f"{path}.old"
    _remove(old)
    if os.path.lexists(path):  # a folder, or a link to one: the link itself is moved aside, its target kept
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if not os.path.lexists(path) and os.path.lexists(old):
            os.replace(old, path)
        raise
    _remove(old)


def _remove(path: str) -> None:
    """Delete a folder, or a link or file, at `path` if there is one (a link's target is kept)."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
