"""Files that hold private data: folders 0700, files 0600, whatever the process umask.

A node's store holds its residents' local calls for help, which never leave the
neighborhood (docs/PROTOCOL.md §13); an observer's holds every event it verified; an
export or a backup holds as much. None of them is for the other accounts of the machine.
SQLite makes `node.db-wal` and `node.db-shm` with the mode of the database file, so a
database file created 0600 here, before SQLite opens it, keeps its companions private too.
An existing file or folder found with a looser mode is tightened, and the tightening is
logged (once per file, when it happens: the next open finds it private).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("coopnet.files")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# The companions SQLite keeps beside a database file in WAL mode (and in rollback mode).
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def tighten(path: Path, mode: int, *, announce: bool = True) -> bool:
    """Take away from `path` every permission bit that `mode` does not grant.

    Returns True when the mode changed (and logs it, unless `announce` is False: a folder
    this process has just made), False when it was already as tight or the path does not
    exist. A path owned by another account, or a shared folder (sticky bit, as /tmp), is
    left as it is, with a warning: tightening it would take it from the others it serves.
    Raises OSError when the mode cannot be changed.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    current = st.st_mode & 0o777
    if current & ~mode == 0:
        return False
    if st.st_uid != os.geteuid() or st.st_mode & stat.S_ISVTX:
        log.warning(
            "%s is readable by other accounts (mode %o) and is shared or not ours: left as it"
            " is; keep private data in a folder of its own",
            path,
            current,
        )
        return False
    os.chmod(path, current & mode)
    if not announce:
        return True
    log.warning(
        "%s was readable or writable by other accounts (mode %o); tightened to %o",
        path,
        current,
        current & mode,
    )
    return True


def private_dir(path: Path, *, announce: bool = True) -> Path:
    """Make `path` (and missing parents) a folder only its owner may enter: 0700.

    Parents created here get the process's usual mode (they may be shared folders); the
    folder itself is tightened if it already existed with a looser mode (logged, unless
    `announce` is False: a folder the caller has just made). Raises OSError.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIR_MODE, announce=announce)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists (empty if new) with mode 0600, before anyone writes to it.

    Creating it with `os.open(..., 0o600)` leaves no moment where it is readable by
    others, whatever the umask (a umask only takes bits away). Raises OSError.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(fd)
    tighten(path, PRIVATE_FILE_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, mode 0600 from its first byte (a secret: the CLI's API
    token). Written beside it and renamed, so a reader sees the old or the new one whole.
    Raises OSError."""
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(part, path)


def private_database(path: Path) -> None:
    """Prepare an SQLite database file for private data: its folder 0700, the file and its
    companions (`-wal`, `-shm`, `-journal`) 0600, tightening what exists. Raises OSError."""
    private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        tighten(path.with_name(path.name + suffix), PRIVATE_FILE_MODE)
