"""Start and stop real server processes for tests without leaking them.

Every server runs with stdout/stderr appended to a log file (never an unread PIPE, which would
block the server once the pipe buffer fills), without the umockdev preload in its environment,
and with ``PR_SET_PDEATHSIG`` so that the kernel kills it if the test process dies (even by
SIGKILL, when no finalizer can run). The death signal follows the *thread* that started the
server: start servers from the main thread (fixtures do), not from a short-lived worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class HarnessError(RuntimeError):
    """A real server could not be started or did not become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without the umockdev preload: servers must see the real /sys and /dev."""
    env = dict(os.environ)
    preload = [p for p in env.pop("LD_PRELOAD", "").split() if "umockdev" not in p]
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    env.pop("UMOCKDEV_DIR", None)
    if extra:
        env.update(extra)
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(
    argv: list[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with output appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=server_env(env),
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe
        )


def stop(proc: subprocess.Popen[bytes] | None, *, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; always reaps. Safe to call twice."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL (an abrupt crash, no clean shutdown) and reap."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.005,
    what: str = "condition",
    alive: subprocess.Popen[bytes] | None = None,
    log: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` until true; raise :class:`HarnessError` naming ``what`` on timeout or
    when the process ``alive`` exits first (with the tail of its log)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if alive is not None and alive.poll() is not None:
            tail = log()[-3000:] if log else ""
            raise HarnessError(f"{what}: process exited with {alive.returncode}\n{tail}")
        if time.monotonic() > deadline:
            tail = log()[-3000:] if log else ""
            raise HarnessError(f"{what}: not true after {timeout} s\n{tail}")
        time.sleep(interval)


def port_open(host: str, port: int) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
