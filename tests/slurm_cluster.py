"""A real SLURM for the tests: a cluster named by a working `$SLURM_CONF`, or else a single-node
one started here from Debian's packages (`slurmctld slurmd slurm-client munge slurmdbd
mariadb-server`), with accounting so that `sacct` answers as on a real cluster.

Everything the throwaway cluster writes (configs, the munge key and socket, the database, state,
logs) lives in one temporary directory; there is no systemd, so each daemon runs in the
foreground as a child of this process, as root, and is stopped by its PID afterwards (jobs left
are cancelled first). No cgroups: `proctrack/linuxproc` and `task/none`. It starts in a few
seconds. To try a sweep on SLURM by hand:

    sudo uv run python tests/slurm_cluster.py     # prints the `export SLURM_CONF=...` to use
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sacct", "scontrol", "srun")


@dataclass
class Cluster:
    conf: Path  # its slurm.conf
    partition: str
    # Daemons started for it (name -> process); empty for a cluster that was already running.
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment a command needs to reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, check: bool = True) -> str:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def jobs(self, name: str) -> dict[str, tuple[str, str]]:
        """The queued or running jobs called `name`: job id (array tasks one by one) ->
        (state, reason)."""
        out = self.run("squeue", "--array", "--noheader", "--name", name, "--format=%i|%T|%r")
        return {i: (state, reason) for i, state, reason in (line.split("|") for line in out.splitlines())}

    def logs(self) -> str:
        """The end of every daemon's log, for a failing test's report."""
        parts = []
        for path in sorted(self.conf.parent.glob("*.log")):
            parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)


def missing() -> list[str]:
    return [name for name in DAEMONS + CLIENTS if shutil.which(name) is None]


def existing_cluster() -> Cluster | None:
    """The cluster `$SLURM_CONF` names, when it answers."""
    conf = os.environ.get("SLURM_CONF")
    if not conf or not Path(conf).is_file():
        return None
    done = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, timeout=30)
    partitions = done.stdout.split()
    if done.returncode or not partitions:
        return None
    default = next((p for p in partitions if p.endswith("*")), partitions[0])
    return Cluster(Path(conf), default.rstrip("*"))


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for(what: str, ready, timeout: float, cluster: Cluster | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        dead = [name for name, process in (cluster.daemons if cluster else {}).items() if process.poll() is not None]
        if dead or time.monotonic() > deadline:
            what = f"{what}: {', '.join(dead)} exited" if dead else f"{what} not ready after {timeout:.0f} s"
            raise RuntimeError(f"SLURM test cluster: {what}\n{cluster.logs() if cluster else ''}")
        time.sleep(0.05)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def configs(root: Path, ports: dict[str, int]) -> str:
    """Write slurm.conf and slurmdbd.conf (beside it, mode 0600: slurmdbd insists); returns the
    partition's name."""
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    mem_mb = int(
        next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")) / 1024 * 0.8
    )
    # cred_expire is also how long a requeued job waits before it may start again (default 120 s).
    auth = f"AuthType=auth/munge\nAuthInfo=socket={root}/munge.socket,cred_expire=5\n"
    (root / "slurm.conf").write_text(
        f"ClusterName=dltips\nSlurmctldHost={host}(127.0.0.1)\n{auth}"
        f"SlurmctldPort={ports['slurmctld']}\nSlurmdPort={ports['slurmd']}\n"
        "SlurmUser=root\nSlurmdUser=root\n"
        f"StateSaveLocation={root}/state\nSlurmdSpoolDir={root}/spool\n"
        f"SlurmctldPidFile={root}/slurmctld.pid\nSlurmdPidFile={root}/slurmd.pid\n"
        f"SlurmctldLogFile={root}/slurmctld.log\nSlurmdLogFile={root}/slurmd.log\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
        "MpiDefault=none\nSwitchType=switch/none\nReturnToService=2\nKillWait=5\nInactiveLimit=0\n"
        "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU_Memory\n"
        # a requeued job starts once it may (EligibleTime), not up to 60 s later
        "SchedulerParameters=sched_interval=1\n"
        # low, so that a three-point sweep is split into arrays (dltips.launch.slurm.submit)
        "MaxArraySize=2\n"
        f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\nAccountingStoragePort={ports['slurmdbd']}\n"
        f"AccountingStoragePass={root}/munge.socket\n"  # the munge socket slurmctld reaches slurmdbd through
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN\n"
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
    )
    dbd = root / "slurmdbd.conf"
    dbd.write_text(
        f"{auth}DbdHost=localhost\nDbdPort={ports['slurmdbd']}\nSlurmUser=root\n"
        f"PidFile={root}/slurmdbd.pid\nLogFile={root}/slurmdbd.log\n"
        f"StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\nStoragePort={ports['mariadb']}\n"
        "StorageUser=slurm\nStorageLoc=slurm_acct_db\n"
    )
    dbd.chmod(0o600)
    return "debug"


@contextmanager
def single_node_cluster(root: Path) -> Iterator[Cluster]:
    """Start munged, MariaDB, slurmdbd, slurmctld and slurmd under `root`; stop them after."""
    root.chmod(0o755)  # munged wants its socket's directory reachable
    for sub in ("state", "spool", "db"):
        (root / sub).mkdir()
    ports = dict(zip(("slurmctld", "slurmd", "slurmdbd", "mariadb"), free_ports(4)))
    cluster = Cluster(root / "slurm.conf", configs(root, ports))
    key = os.open(
        root / "munge.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
    )  # munged refuses a key others may read
    os.write(key, os.urandom(1024))
    os.close(key)
    with ExitStack() as stack:
        stack.callback(stop, cluster)

        def start(name: str, *command: str) -> None:
            log = open(root / f"{name}.out", "wb")
            stack.callback(log.close)
            cluster.daemons[name] = subprocess.Popen(
                command,
                env=cluster.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=stopped_with_parent,
            )

        # munged refuses root without --force; its files stay in root, not /run/munge.
        start(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--socket={root}/munge.socket",
            f"--key-file={root}/munge.key",
            f"--pid-file={root}/munged.pid",
            f"--seed-file={root}/munged.seed",
            f"--log-file={root}/munged.log",
        )
        # No grant tables (any user may connect) and no system database: it starts in a second.
        start(
            "mariadbd",
            "mariadbd",
            "--no-defaults",
            f"--datadir={root}/db",
            f"--socket={root}/mariadb.socket",
            f"--port={ports['mariadb']}",
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-grant-tables",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=4M",
            f"--log-error={root}/mariadb.log",
        )
        wait_for("munged", (root / "munge.socket").exists, 20, cluster)
        wait_for("MariaDB", lambda: listening(ports["mariadb"]), 60, cluster)
        start("slurmdbd", "slurmdbd", "-D")
        wait_for("slurmdbd", lambda: listening(ports["slurmdbd"]), 60, cluster)
        start("slurmctld", "slurmctld", "-D", "-i")
        start("slurmd", "slurmd", "-D")
        wait_for(
            "the node",
            lambda: cluster.run("sinfo", "--noheader", "--format=%t", check=False).strip() == "idle",
            60,
            cluster,
        )
        yield cluster


def stopped_with_parent() -> None:
    """In a daemon before it starts: SIGTERM when the process that started it dies, so that
    a test run killed outright leaves no daemons behind (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def stop(cluster: Cluster) -> None:
    """Cancel what is left in the queue, then stop the daemons by PID, last started first."""
    if "slurmctld" in cluster.daemons and cluster.daemons["slurmctld"].poll() is None:
        cluster.run("scancel", "--user=root", check=False)
        deadline = time.monotonic() + 15
        while cluster.run("squeue", "--noheader", check=False).strip() and time.monotonic() < deadline:
            time.sleep(0.2)
    for _name, process in reversed(list(cluster.daemons.items())):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[Cluster]:
    """A SLURM cluster to submit to: `$SLURM_CONF`'s, or a single-node one started for the
    module's tests (and stopped after them); skips when there is neither (no SLURM packages, or
    not root). A module that uses it is listed in tests/conftest.py's ONE_WORKER, so that its
    tests share one cluster under pytest-xdist."""
    cluster = existing_cluster()
    if cluster:
        yield cluster
        return
    if missing():
        pytest.skip(f"no SLURM: $SLURM_CONF names no working cluster and {', '.join(missing())} not installed")
    if os.geteuid() != 0:
        pytest.skip("no SLURM: $SLURM_CONF names no working cluster, and starting one needs root")
    with single_node_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the cluster on kill too
    root = Path(tempfile.mkdtemp(prefix="slurm-"))
    try:
        with single_node_cluster(root) as running:
            print(
                f"export SLURM_CONF={running.conf}    # partition {running.partition}; Ctrl-C stops the cluster",
                flush=True,
            )
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
            finally:
                print("stopping the cluster", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
