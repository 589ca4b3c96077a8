"""Reading input files and writing output files safely: the one place that opens them.

Contract:
- `read_regular(path, limit=None) -> bytes` reads a regular file (at most `limit` bytes when given).
  Anything else -- a FIFO, a character or block device, a socket, a directory -- raises
  `NotRegularFile`, an `OSError` whose `strerror` says what the path is ("not a regular file (a
  FIFO)"), so callers that already word `OSError`s as one line word this one too. The file is
  opened non-blocking first and checked with `fstat` on the open descriptor: opening a FIFO with
  no writer would otherwise block forever, and checking the path before opening it would race.
- `read_regular_text(path, limit=None) -> str`: the same, decoded as UTF-8 (`UnicodeDecodeError`
  on bad bytes).
- `write_atomic(path, data, *, private=False)` writes `data` (str as UTF-8, or bytes) to `path`
  atomically: a temporary file with a random name in the same directory, created with
  O_CREAT|O_EXCL|O_NOFOLLOW (a file or symlink planted at that name makes the call fail instead
  of being followed or overwritten), flushed and fsynced, then `os.replace`d onto `path`, which
  replaces a symlink at `path` rather than writing through it. Readers see the old file or the
  new one, never half of one. `private=True` creates the file with mode 0600 (saved plans);
  otherwise 0666 minus the umask, like any new file. On failure the temporary file is removed and
  the `OSError` propagates for the caller to word.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class NotRegularFile(OSError):
    """`path` exists but is not a regular file; `strerror` says what it is."""


def _describe(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (see the module docstring)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({_describe(mode)})", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1  # owned by fh now
            return fh.read() if limit is None else fh.read(limit)
    finally:
        if fd >= 0:
            os.close(fd)


def read_regular_text(path: str | os.PathLike[str], limit: int | None = None) -> str:
    return read_regular(path, limit).decode("utf-8")


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, private: bool = False) -> None:
    """Replace `path` with `data` atomically (see the module docstring)."""
    target = os.fspath(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if private:
            os.chmod(tmp, 0o600)  # O_CREAT's mode is what the file gets; say it again, explicitly
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
