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
- `open_append(path) -> BinaryIO` opens a regular file for appending (created if missing), with
  the same refusal of anything else (`NotRegularFile`), never a wait for a reader.
- `write_atomic(path, data, *, private=False, edit=False)` writes `data` (str as UTF-8, or bytes)
  to `path` atomically: a temporary file with a random name in the same directory, created with
  O_CREAT|O_EXCL|O_NOFOLLOW (a file or symlink planted at that name makes the call fail instead
  of being followed or overwritten), flushed and fsynced, then `os.replace`d onto the target.
  Readers see the old file or the new one, never half of one. On failure the temporary file is
  removed and the `OSError` propagates for the caller to word.
  * An output (`edit=False`: a saved plan, an export, a chart): a symlink AT `path` is replaced,
    not written through (a link planted in a shared directory cannot redirect the write).
  * An edit (`edit=True`: `tune --write` changing the manifest the user named): `path` must be an
    existing regular file; a symlink is followed and the real file is rewritten (the link stays a
    link). A file with more than one hard link is refused (`HardLinked`): the atomic rename gives
    the name a new inode, so the other names would silently keep the old text, and writing in
    place instead would give up atomicity.
  * Either way an existing regular file keeps its permission bits and, where allowed, its owner
    and group; a read-only one (no write bit, or not writable by this user) is refused
    (`ReadOnlyFile`), never silently replaced. `private=True` makes the file mode 0600 whatever it
    was (saved plans); a new file otherwise gets 0666 minus the umask, like any new file.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from typing import BinaryIO

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


def _open_regular(path: str | os.PathLike[str], flags: int) -> int:
    """A descriptor of the regular file at `path`, opened with `flags`: opened non-blocking, so a
    FIFO or device is refused at once (never waited on), then made blocking for the read or write."""
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({_describe(mode)})", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (see the module docstring)."""
    fd = _open_regular(path, os.O_RDONLY)
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1  # owned by fh now
            return fh.read() if limit is None else fh.read(limit)
    finally:
        if fd >= 0:
            os.close(fd)


def read_regular_text(path: str | os.PathLike[str], limit: int | None = None) -> str:
    return read_regular(path, limit).decode("utf-8")


class ReadOnlyFile(OSError):
    """The file to replace is read-only; `strerror` says so and how to allow it."""


class HardLinked(OSError):
    """The file to edit has several hard links; `strerror` says why it is refused."""


def _check_replaceable(target: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(errno.EINVAL, f"not a regular file ({_describe(st.st_mode)})", target)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o222 or not os.access(target, os.W_OK):
        raise ReadOnlyFile(
            errno.EACCES, f"it is read-only (mode {mode:04o}); make it writable (chmod u+w) to let it be replaced", target
        )


def open_append(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for appending (see the module docstring)."""
    fd = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, private: bool = False, edit: bool = False) -> None:
    """Replace `path` with `data` atomically (see the module docstring)."""
    target = os.fspath(path)
    if edit:
        target = os.path.realpath(target)  # through symlinks: the real file is the one edited
    try:
        st: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        if edit:
            raise
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        st = None  # an output's symlink is replaced, whatever it points to
    if st is not None:
        _check_replaceable(target, st)
        if edit and st.st_nlink > 1:
            raise HardLinked(
                errno.EMLINK,
                f"it has {st.st_nlink} hard links, and an atomic rewrite would leave the other names with "
                "the old text; edit a copy (cp FILE FILE.new && mv FILE.new FILE breaks the link)",
                target,
            )
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    # 0600 until the content is in: a private file's text is never readable by others, not even
    # for a moment before the replaced file's mode is set (a new file: 0666 minus the umask)
    fd = os.open(tmp, flags, 0o600 if private or st is not None else 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            if private:
                os.fchmod(fh.fileno(), 0o600)  # O_CREAT's mode is what the file gets; say it again, explicitly
            elif st is not None:
                _keep_owner_and_mode(fh.fileno(), st)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _keep_owner_and_mode(fd: int, st: os.stat_result) -> None:
    """The replaced file's owner and group where this user may set them, and its permission bits."""
    if hasattr(os, "fchown"):
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except OSError:
            pass  # not ours to give away: the new file stays this user's
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
