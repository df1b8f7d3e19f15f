"""A real one-node SLURM on this machine, for tests: munged, slurmctld and slurmd
started directly (no systemd) from a temporary directory, and stopped after.

Debian's ``slurm-wlm`` and ``munge`` are installed with apt-get when missing
(root only).  Everything else lives in the temporary directory: the munge key
and socket, ``slurm.conf`` (``SLURM_CONF`` points there), state, spool and
logs, on ports chosen free, so a system SLURM, if any, is left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = {
    "slurmctld": "slurm-wlm",
    "slurmd": "slurm-wlm",
    "sbatch": "slurm-wlm",
    "munged": "munge",
    "mungekey": "munge",
}


def why_not_available() -> str | None:
    """A reason SLURM cannot be provided here, or None when it can."""
    missing = [tool for tool in PACKAGES if shutil.which(tool) is None]
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"SLURM is not installed ({', '.join(missing)} missing) and installing it needs root"
    if shutil.which("apt-get") is None:
        return f"SLURM is not installed ({', '.join(missing)} missing) and there is no apt-get to install it"
    return None


def install() -> None:
    """apt-get install slurm-wlm and munge when any of their programs is missing."""
    missing = sorted({PACKAGES[tool] for tool in PACKAGES if shutil.which(tool) is None})
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)


def _terminate_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies, even killed with SIGKILL,
    so that no SLURM daemon outlives the run that started it (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_resources() -> tuple[int, int]:
    """(CPUs, RealMemory in MB) as ``slurmd -C`` reports them."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(word.split("=", 1) for word in out.split() if "=" in word)
    return int(fields["CPUs"]), int(fields["RealMemory"])


class LocalSlurm:
    """A running one-node SLURM; ``env`` holds ``SLURM_CONF`` for its clients."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]  # `hostname -s`
        self.cpus, self.memory_mb = _node_resources()
        self.conf = self.root / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.processes: list[subprocess.Popen] = []

    def write_conf(self) -> None:
        r = self.root
        for sub in ("munge", "state", "spool", "log"):
            (r / sub).mkdir(mode=0o700, exist_ok=True)
        self.conf.write_text(f"""\
ClusterName=oceanflowtest
SlurmctldHost={self.host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
ReturnToService=2
MailProg=/bin/true
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MinJobAge=2
KillWait=5
NodeName={self.host} CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")

    def _spawn(self, *command) -> None:
        log = open(self.root / "log" / f"{Path(command[0]).name}.out", "wb")
        self.processes.append(
            subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )
        )

    def start(self, timeout=30.0) -> None:
        self.write_conf()
        munge = self.root / "munge"
        subprocess.run(["mungekey", "--create", f"--keyfile={munge}/key"], check=True, capture_output=True)
        self._spawn(
            "munged",
            "--foreground",
            "--force",
            f"--socket={munge}/socket",
            f"--key-file={munge}/key",
            f"--pid-file={munge}/pid",
            f"--seed-file={munge}/seed",
            f"--log-file={munge}/log",
        )
        self._wait(lambda: (munge / "socket").exists(), timeout, "munged did not create its socket")
        self._spawn("slurmctld", "-D", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-f", str(self.conf))
        self._wait(self._node_idle, timeout, "the node did not become idle")

    def _node_idle(self) -> bool:
        result = self.run("sinfo", "-h", "-o", "%T", check=False)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def _wait(self, ready, timeout, what) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[0] for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"local SLURM failed to start: {what}; exited: {dead}; logs:\n{self.logs()}")
            time.sleep(0.1)

    def run(self, *command, check=True) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, capture_output=True, text=True, check=check, env={**os.environ, **self.env}, timeout=60
        )

    def queued(self) -> list[str]:
        """Ids of every job squeue still lists (pending, running or completing)."""
        return self.run("squeue", "-h", "-o", "%i").stdout.split()

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((self.root / "log").glob("*"))
            if p.is_file()
        )

    def stop(self) -> None:
        """Cancel leftover jobs, then stop slurmd, slurmctld and munged, waiting for each."""
        if any(p.poll() is None for p in self.processes):
            self.run("scancel", "--user", "root", check=False)
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
