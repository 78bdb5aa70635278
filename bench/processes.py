"""Starting, pinning, watching and stopping the benchmarked processes.

Each process gets its own session (process group), so stopping it stops whatever it forked;
its peak RSS and CPU time are read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_started: list[Managed] = []


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for programs that cannot report theirs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_cpus(spec: str) -> set[int]:
    """``"0"``, ``"0,1"`` or ``"0-3"`` as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc/PID/task/*/children)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        tasks = Path(f"/proc/{current}/task")
        try:
            task_ids = [t.name for t in tasks.iterdir()]
        except OSError:
            continue
        for tid in task_ids:
            try:
                text = (tasks / tid / "children").read_text()
            except OSError:
                continue
            for child in text.split():
                found.append(int(child))
                pending.append(int(child))
    return found


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of one process in MiB; NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass
class Managed:
    """A started process and what is known about it."""

    name: str
    process: subprocess.Popen[bytes]
    started_at: float
    log_path: Path
    cpus: str
    #: Seconds from start until it answered its readiness check.
    serving_s: float = float("nan")
    peak_rss: dict[int, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The main process id."""
        return self.process.pid

    def pids(self) -> list[int]:
        """The main process and its descendants."""
        return [self.pid, *children(self.pid)]

    def cpu_seconds(self) -> float:
        """CPU seconds used by the process tree so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def sample_rss(self) -> None:
        """Remember each live process's peak RSS (call before stopping)."""
        for pid in self.pids():
            rss = peak_rss_mb(pid)
            if rss == rss:  # not NaN
                self.peak_rss[pid] = max(rss, self.peak_rss.get(pid, 0.0))

    def alive(self) -> bool:
        """True while the main process runs."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the process's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def taskset_prefix(cpus: str) -> list[str]:
    """``taskset -c CPUS`` when taskset exists and CPUS is set, else nothing."""
    if cpus and shutil.which("taskset"):
        return ["taskset", "-c", cpus]
    return []


def start(
    name: str,
    command: list[str],
    *,
    cpus: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Managed:
    """Start ``command`` pinned to ``cpus`` in its own session, output to LOG_DIR/NAME.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*taskset_prefix(cpus), *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    managed = Managed(name, process, started, log_path, cpus)
    _started.append(managed)
    return managed


def started_processes() -> list[Managed]:
    """Every process started by this module so far (alive or not)."""
    return list(_started)


def stop_all() -> None:
    """Stop whatever this module started and is still running (a last-resort cleanup)."""
    for managed in _started:
        if managed.alive():
            stop(managed)


def _signal(pgid: int, pids: list[int], sig: signal.Signals) -> None:
    for send, target in ((os.killpg, pgid), *((os.kill, pid) for pid in pids)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(target, sig)


def stop(managed: Managed, *, grace_s: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever of it is left after ``grace_s``."""
    # start_new_session made the process a group leader: its pid is the group id. Descendants
    # that left the group (a server that daemonizes) are signalled by pid as well.
    stragglers = children(managed.pid)
    _signal(managed.pid, stragglers, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        managed.process.wait(timeout=grace_s)
    _signal(managed.pid, stragglers, signal.SIGKILL)
    managed.process.wait(timeout=grace_s)
