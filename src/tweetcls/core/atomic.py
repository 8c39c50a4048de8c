"""Write files and directories so that a crash or an error never leaves half an output.

:func:`atomic_path` lets a block write an output (a file or a whole directory) into a staging
directory beside it, ``.<name>.<random>.tmp``, and moves it onto its path only when the block
succeeds. Whatever stops the process (an exception, a full disk, SIGKILL), the path holds
the previous output, intact, or the new one, complete; when an existing directory is replaced
and the process dies between the two renames of the swap, the path is absent. It never holds
a mixture. (Nothing is fsynced: a power cut can still lose writes the kernel had not flushed.)
A full or size-limited file system is one :class:`OutputWriteError` (``error: ...`` from the
CLI), not a traceback.

What a killed process can leave behind is its staging directory. The next
:func:`atomic_path` of the same target removes the stale ones before it writes, so that they
neither accumulate (a model directory each) nor end up in what DVC or git see beside the
target (``reports/.metrics.json.<random>.tmp``). A staging directory is stale when no process
holds the ``flock`` its writer takes on it for as long as the block runs (the kernel drops it
when the writer dies, so pids, hosts and clocks do not matter); on a file system without
``flock`` on directories (some NFS mounts, Windows) nothing is removed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tweetcls.core.errors import OutputWriteError

try:
    import fcntl
except ImportError:  # Windows: no locks, stale staging directories are kept
    fcntl = None

#: Suffix of the staging directories (their name: ``.<target name>.<random><suffix>``).
STAGING_SUFFIX = ".tmp"
#: ``errno`` values of a full or size-limited file system (``EFBIG``: ``RLIMIT_FSIZE``, or a
#: file over the file system's largest size).
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: An errno in an error's text: Python's ``[Errno 28] ...``, Rust's ``... (os error 28)``.
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\]|\(os error (\d+)\)")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    Works for files and directories: the block writes whatever it wants at the yielded path
    (which has ``path``'s name). An existing directory at ``path`` is renamed into the staging
    directory, the new output renamed onto ``path``, and only then the old copy deleted.

    Raises:
        OutputWriteError: the block or the swap ran out of space (``ENOSPC``, ``EDQUOT``,
            ``EFBIG``: see :func:`no_space_reason`); ``path`` is unchanged.
    """
    target = Path(path)
    with _no_space_error(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target)
        staging, lock = _new_staging(target)
    try:
        with _no_space_error(target):
            yield staging / target.name
            _publish(staging / target.name, target, staging / f"{target.name}.old")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if lock is not None:
            os.close(lock)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def no_space_reason(err: BaseException) -> str | None:
    """``"No space left on device"`` (or the like) if ``err`` comes from a full or size-limited
    file system, else ``None``.

    Looks along the exception's chain for an ``OSError`` with an errno of :data:`NO_SPACE`, or
    for one in the message of an error that reports it as text: ``shutil.copytree`` collects
    each file's ``[Errno 28] ...``, native writers (safetensors, tokenizers) say
    ``... (os error 28)``.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        codes = [err.errno] if isinstance(err, OSError) and err.errno is not None else []
        codes += [int(a or b) for a, b in _ERRNO_TEXT.findall(str(err))]
        for code in codes:
            if code in NO_SPACE:
                return os.strerror(code)
        err = err.__cause__ or err.__context__
    return None


def remove_stale_staging(target: str | os.PathLike) -> list[Path]:
    """Delete the staging directories of ``target`` whose writer is gone; return them."""
    target = Path(target)
    name = re.compile(rf"\.{re.escape(target.name)}\.[^./]+{re.escape(STAGING_SUFFIX)}\Z")
    removed = []
    with os.scandir(target.parent) as entries:
        stale = [e.path for e in entries if name.match(e.name) and e.is_dir(follow_symlinks=False)]
    for path in stale:
        lock = _try_lock(path)
        if lock is None:  # its writer is alive, or locks are not supported here
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(Path(path))
        finally:
            os.close(lock)
    return removed


@contextmanager
def _no_space_error(target: Path) -> Iterator[None]:
    """Raise an error of a full file system as :class:`OutputWriteError` about ``target``."""
    try:
        yield
    except OutputWriteError as err:  # of a nested atomic_path: name the outer output
        raise OutputWriteError(target, err.reason) from err
    except Exception as err:
        reason = no_space_reason(err)
        if reason is None:
            raise
        raise OutputWriteError(target, reason) from err


def _new_staging(target: Path) -> tuple[Path, int | None]:
    """A new staging directory beside ``target`` and the descriptor holding its lock."""
    while True:
        staging = tempfile.mkdtemp(
            prefix=f".{target.name}.", suffix=STAGING_SUFFIX, dir=target.parent
        )
        if fcntl is None:
            return Path(staging), None
        try:
            lock = os.open(staging, os.O_RDONLY)
        except FileNotFoundError:  # another writer's cleanup took it before we locked it
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(lock), os.stat(staging)):
                return Path(staging), lock
        except (BlockingIOError, FileNotFoundError):  # that cleanup is under way
            pass
        except OSError:  # no flock here: write unlocked; cleanups cannot lock it either
            return Path(staging), None
        os.close(lock)


def _try_lock(path: str) -> int | None:
    """A descriptor holding ``path``'s lock, or ``None`` if it is held or cannot be taken."""
    if fcntl is None:
        return None
    try:
        lock = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return None
    return lock


def _publish(new: Path, target: Path, old: Path) -> None:
    """Rename ``new`` onto ``target``; an existing directory there is first moved to ``old``."""
    if target.is_dir() and not target.is_symlink():
        os.replace(target, old)  # a rename: target holds the previous output, or nothing
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(old, target)
            raise
    else:
        os.replace(new, target)  # a rename over a file is atomic
