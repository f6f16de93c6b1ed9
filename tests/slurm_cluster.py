"""A private one-node Slurm for the tests: its own munged, slurmctld and slurmd.

Everything lives under one temporary folder (config, munge key and socket, state, spool,
logs); the daemons listen on free local ports and authenticate through their own munged
(``AuthInfo=socket=...``), so no system configuration (/etc/slurm, /etc/munge, a system
munged) is read or touched. ``stop()`` cancels what is left, shuts the daemons down and
checks that no process of the cluster (daemon, step daemon or job) is still alive.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NODE = "rands0"
CPUS = 2


def _path() -> str:
    """PATH with the sbin folders where Debian puts the daemons (a non-root PATH may lack them)."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])


def have_slurm() -> str | None:
    """None when a private cluster can be started here, else the reason it cannot."""
    for exe in ("slurmctld", "slurmd", "munged", "sbatch", "scontrol", "squeue", "scancel"):
        if shutil.which(exe, path=_path()) is None:
            return f"{exe} is not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the private Slurm runs slurmd as root"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _stale_mpich_segments(since: float) -> list[Path]:
    """MPICH shared-memory files (``/dev/shm/mpich_shm_*``) written since ``since`` that no live
    process maps: what a rank that was killed or aborted leaves behind."""
    try:
        new = [p for p in Path("/dev/shm").glob("mpich_shm_*") if p.stat().st_mtime >= since]
    except OSError:
        return []
    mapped: set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps") if new else ():
        try:
            text = maps.read_text()
        except OSError:
            continue
        mapped.update(p.name for p in new if p.name in text)
    return [p for p in new if p.name not in mapped]


class SlurmCluster:
    """One node (``CPUs=2``), one partition, daemons started as daemons, all under ``root``."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        # short path: the munge socket path must fit a sockaddr_un; every folder on the way to
        # the socket must be searchable by all (munged checks it)
        self.root = Path(root or tempfile.mkdtemp(prefix="rands-slurm-", dir="/tmp"))
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.log = self.root / "log"
        self.socket = self.root / "sock" / "munge.sock"
        self.pids: dict[str, int] = {}
        self.started_at = 0.0

    # ------------------------------------------------------------------ environment

    def env(self, extra: dict | None = None) -> dict:
        """The environment for Slurm commands and jobs: this cluster's config, one thread."""
        env = dict(os.environ)
        for key in list(env):
            if key.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "PMI_", "HYDRA_")):
                del env[key]
        env.update(PATH=_path(), SLURM_CONF=str(self.conf), RANDS_SLURM_CLUSTER=str(self.root),
                   OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONHASHSEED="0")
        env.update(extra or {})
        return env

    def _write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "log", "munge", "sock"):
            (r / d).mkdir(exist_ok=True)
        (r / "munge").chmod(0o700)
        (r / "sock").chmod(0o755)
        key = r / "munge" / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, os.urandom(1024))
        os.close(fd)
        host = socket.gethostname().split(".")[0]
        self.ports = (_free_port(), _free_port())
        # job ids start at a random number: a job killed inside MPI_Init leaves MPICH's
        # /dev/shm/mpich_shm_<hash of job.step>_0 behind, and the same job.step of a later
        # cluster (ids from 1 again) would open it and fail in MPI_Init ("Message truncated")
        first_job_id = random.randrange(10_000, 60_000_000)
        self.conf.write_text(f"""\
# private test cluster written by tests/slurm_cluster.py
ClusterName=randstest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmctldPort={self.ports[0]}
SlurmdPort={self.ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=debug2
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
FirstJobId={first_job_id}
MinJobAge=3600
KillWait=10
InactiveLimit=0
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={CPUS} State=UNKNOWN
PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")

    # ------------------------------------------------------------------ start / stop

    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        self._write_config()
        r = self.root
        env = self.env()
        subprocess.run(["munged", f"--socket={self.socket}", f"--key-file={r}/munge/munge.key",
                        f"--pid-file={r}/munge/munged.pid", f"--log-file={r}/log/munged.log",
                        f"--seed-file={r}/munge/munged.seed"], env=env, check=True,
                       capture_output=True, timeout=30)
        self.pids["munged"] = self._read_pid(r / "munge" / "munged.pid")
        self.started_at = time.time()
        subprocess.run(["slurmctld"], env=env, check=True, capture_output=True, timeout=30)
        self.pids["slurmctld"] = self._read_pid(r / "slurmctld.pid")
        subprocess.run(["slurmd", "-N", NODE], env=env, check=True, capture_output=True, timeout=30)
        self.pids["slurmd"] = self._read_pid(r / "slurmd.pid")
        deadline = time.time() + timeout
        state = ""
        while time.time() < deadline:
            out = self.cmd("sinfo", "-h", "-n", NODE, "-o", "%T", check=False)
            state = out.stdout.strip()
            if state == "idle":
                return self
            time.sleep(0.3)
        raise RuntimeError(f"node {NODE} not idle after {timeout:.0f} s (state {state!r}); "
                           f"see {self.log}")

    def _read_pid(self, path: Path, timeout: float = 10.0) -> int:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                return int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        raise RuntimeError(f"{path} was not written")

    def processes(self) -> list[tuple[int, str]]:
        """Live processes of this cluster: the daemons and everything started with its config."""
        marks = (f"SLURM_CONF={self.conf}".encode(), f"RANDS_SLURM_CLUSTER={self.root}".encode())
        found = {pid: name for name, pid in self.pids.items() if _alive(pid)}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if any(m in environ for m in marks) and _alive(int(entry)):
                found.setdefault(int(entry), cmdline.decode(errors="replace")[:120])
        return sorted(found.items())

    def stop(self) -> list[str]:
        """Cancel every job, stop every daemon; returns what had to be cleaned up (empty: none)."""
        left: list[str] = []
        if self.pids.get("slurmctld") and _alive(self.pids["slurmctld"]):
            jobs = self.cancel_all(30)
            if jobs:
                left.append(f"jobs still queued or running: {jobs}")
            self.cmd("scontrol", "shutdown", check=False)
        for name in ("slurmctld", "slurmd"):
            self._wait_dead(name, 15)
        if self.pids.get("munged"):
            subprocess.run(["munged", f"--socket={self.socket}", "--stop"], env=self.env(),
                           capture_output=True, timeout=30)
            self._wait_dead("munged", 10)
        deadline = time.time() + 15
        while self.processes() and time.time() < deadline:
            time.sleep(0.2)
        rest = self.processes()
        if rest:
            left.append(f"processes still alive after shutdown: {rest}")
            for pid, _ in rest:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for segment in _stale_mpich_segments(self.started_at) if self.started_at else ():  # rank faults
            segment.unlink(missing_ok=True)
        return left

    def cancel_all(self, timeout: float = 60.0) -> list[str]:
        """Cancel every job still queued or running and wait until they are gone; their ids."""
        jobs = self.jobs()
        if jobs:
            self.cmd("scancel", "--full", *jobs, check=False)
            self._wait_no_jobs(timeout)
        return jobs

    def _wait_dead(self, name: str, timeout: float) -> None:
        pid = self.pids.get(name)
        if not pid:
            return
        deadline = time.time() + timeout
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)

    def _wait_no_jobs(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while self.jobs() and time.time() < deadline:
            time.sleep(0.3)

    # ------------------------------------------------------------------ commands

    def cmd(self, *args: str, check: bool = True, timeout: float = 60.0,
            env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), env=self.env(env), capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def sbatch(self, script: str | os.PathLike, *args: str, options: tuple = (), cwd=None,
               env: dict | None = None) -> str:
        """Submit ``script`` (``options`` before it override its #SBATCH lines); the job id."""
        proc = subprocess.run(["sbatch", "--parsable", *options, str(script), *args],
                              env=self.env(env), capture_output=True, text=True, timeout=60, cwd=cwd)
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch {script} failed: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def submit_wrap(self, command: str, options: tuple = (), cwd=None, env: dict | None = None) -> str:
        """``sbatch --wrap COMMAND``: the job id."""
        proc = subprocess.run(["sbatch", "--parsable", *options, "--wrap", command], env=self.env(env),
                              capture_output=True, text=True, timeout=60, cwd=cwd)
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch --wrap {command!r} failed: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def jobs(self) -> list[str]:
        """Ids of the jobs (array tasks included) that are not finished."""
        out = self.cmd("squeue", "-h", "-o", "%i", check=False)
        return [j for j in out.stdout.split() if j]

    def job(self, jobid: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, ExitCode, StdOut, ...)."""
        out = self.cmd("scontrol", "show", "job", "-o", jobid, check=False).stdout
        info: dict[str, str] = {}
        for token in out.split():
            if "=" in token:
                key, value = token.split("=", 1)
                info.setdefault(key, value)
        return info

    def wait(self, jobid: str, timeout: float = 120.0) -> dict[str, str]:
        """Wait until every task of ``jobid`` has left the queue; the final record of the job."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            pending = [j for j in self.jobs() if j == jobid or j.startswith(f"{jobid}_")]
            if not pending:
                info = self.job(jobid)
                if info.get("JobState") not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
                    return info
            time.sleep(0.25)
        raise TimeoutError(f"job {jobid} still in the queue after {timeout:.0f} s: {self.job(jobid)}")

    def wait_steps_gone(self, jobid: str, timeout: float = 60.0) -> None:
        """Wait until no slurmstepd of job ``jobid`` is alive. They can outlive the job's end
        by seconds, and a requeued job reuses its step ids: a new step started beside the old
        daemon loses its socket when that one exits (signals then no longer reach it)."""
        mark = f"slurmstepd: [{jobid}.".encode()
        deadline = time.time() + timeout
        while True:
            alive = []
            for entry in os.listdir("/proc"):
                try:
                    if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes().startswith(mark):
                        alive.append(int(entry))
                except OSError:
                    continue
            alive = [pid for pid in alive if _alive(pid)]
            if not alive:
                return
            if time.time() > deadline:
                raise TimeoutError(f"slurmstepd of job {jobid} still alive after {timeout:.0f} s: {alive}")
            time.sleep(0.2)

    def log_lines(self, jobid: str, n: int = 40) -> str:
        """The last ``n`` lines of the daemons' logs that name job ``jobid`` (for failure messages)."""
        lines = []
        for name in ("slurmctld.log", "slurmd.log"):
            try:
                text = (self.log / name).read_text(errors="replace")
            except OSError:
                continue
            lines += [f"{name}: {line}" for line in text.splitlines()
                      if re.search(rf"\b(JobId=|job|StepId=){jobid}\b", line)]
        return "\n".join(lines[-n:])

    def array_states(self, jobid: str) -> dict[str, tuple[str, str]]:
        """task id -> (state, exit code) for every task of array job ``jobid``."""
        out = self.cmd("scontrol", "show", "job", "-o", jobid, check=False).stdout
        states = {}
        for line in out.splitlines():
            fields = dict(t.split("=", 1) for t in line.split() if "=" in t)
            if "ArrayTaskId" in fields:
                states[fields["ArrayTaskId"]] = (fields.get("JobState", ""), fields.get("ExitCode", ""))
        return states
