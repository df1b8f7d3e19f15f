"""oceanflow.cluster without a batch system: profiles, units, job scripts, LocalCluster."""

import sys
import textwrap

import dask
import numpy as np
import pytest
from cluster_workloads import ROOT, assert_identical, check_oracles, compute, inputs, worker_facts

from oceanflow import cluster
from oceanflow.chunking import default_target


@pytest.fixture
def user_config(tmp_path):
    """Point dask.config at a temporary directory holding the user's oceanflow.yaml."""

    def write(text):
        (tmp_path / "oceanflow.yaml").write_text(textwrap.dedent(text))
        dask.config.refresh(paths=[str(tmp_path)])

    yield write
    dask.config.refresh()


def test_profiles_merge_user_yaml_over_shipped_defaults(user_config):
    shipped = cluster.profiles()
    assert set(cluster.KINDS) <= set(shipped)
    user_config("""
        oceanflow:
          cluster:
            profiles:
              slurm:
                queue: regular
              big:
                kind: slurm
                memory: 120GiB
                log-directory: /scratch/logs
    """)
    merged = cluster.profiles()
    assert merged["slurm"] == {**shipped["slurm"], "queue": "regular"}
    assert merged["big"] == {"kind": "slurm", "memory": "120GiB", "log_directory": "/scratch/logs"}
    kind, settings = cluster.resolve(profile="big", walltime="02:00:00")
    assert kind == "slurm"
    assert (settings["queue"], settings["memory"], settings["cores"], settings["walltime"]) == (
        "regular",
        "120GiB",
        shipped["slurm"]["cores"],
        "02:00:00",
    )
    assert cluster.resolve("big")[0] == "slurm"  # a profile name where a kind goes, as a command line passes it


def test_oceanflow_yaml_is_package_data():
    import tomllib

    with open(f"{ROOT}/pyproject.toml", "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["oceanflow.cluster"]
    assert "oceanflow.yaml" in package_data
    from oceanflow.cluster.config import CONFIG_FILE

    assert CONFIG_FILE.parent.name == "cluster" and CONFIG_FILE.is_file()


def test_every_batch_system_gets_the_batch_defaults(user_config):
    shipped = cluster.profiles()
    user_config("""
        oceanflow:
          cluster:
            batch-defaults:
              walltime: "02:00:00"
            profiles:
              pbs:
                cores: 8
    """)
    merged = cluster.profiles()
    assert set(cluster.BATCH_SYSTEMS) <= set(merged)
    for kind in cluster.BATCH_SYSTEMS:
        assert merged[kind]["kind"] == kind and merged[kind]["walltime"] == "02:00:00"
        assert merged[kind]["memory"] == shipped[kind]["memory"] == "4GiB"
    assert (merged["pbs"]["cores"], merged["slurm"]["cores"]) == (8, 1)
    assert "-l walltime=02:00:00" in directives(cluster.job_script("pbs"), "#PBS")


def test_import_writes_nothing_and_starts_nothing(tmp_path):
    """A fresh HOME: `import oceanflow` and `oceanflow.cluster` leave it empty; the profiles write their copy."""
    import os
    import subprocess

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    code = textwrap.dedent("""
        import os, sys, threading
        import psutil
        import oceanflow
        print(sorted(os.listdir(os.environ["HOME"])), "oceanflow.cluster" in sys.modules, threading.active_count(),
              psutil.Process().children())
        oceanflow.cluster.KINDS
        print(sorted(os.listdir(os.environ["HOME"])), "dask_jobqueue" in sys.modules)
        oceanflow.cluster.profiles()
        print(sorted(os.listdir(os.environ["HOME"])))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=work, check=True)
    assert run.stdout.splitlines() == ["[] False 1 []", "[] False", "['.config']"], run.stderr
    assert list(work.iterdir()) == []
    from oceanflow.cluster.config import CONFIG_FILE

    written = (home / ".config" / "dask" / "oceanflow.yaml").read_text().splitlines()
    shipped = CONFIG_FILE.read_text().splitlines()
    assert written == [f"# {line}" if line.strip() and not line.startswith("#") else line for line in shipped]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4GiB", 4 * 2**30),
        ("512 MiB", 512 * 2**20),
        ("1.5TiB", int(1.5 * 2**40)),
        ("64kib", 64 * 1024),
        ("3Gi", 3 * 2**30),
        ("2GB", 2 * 10**9),
        ("1.1 gb", 1_100_000_000),
        ("750MB", 750 * 10**6),
        ("1000000B", 10**6),
        (1024, 1024),
    ],
)
def test_memory_is_read_as_dask_reads_it(text, expected):
    from dask.utils import parse_bytes

    assert cluster.parse_memory(text) == expected == parse_bytes(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("4G", r"ambiguous: dask reads G as 10\*\*9 bytes, SLURM and PBS as 2\*\*30; write '4GiB' .* or '4GB'"),
        ("512m", "ambiguous.*'512MiB'"),
        ("4096", "ambiguous.*bare number.*'4096MiB'"),
        ("4 GiB RAM", "malformed"),
        ("four GiB", "malformed"),
        ("4 parsecs", "unknown unit"),
        (0, "more than zero"),
        ("0GiB", "more than zero"),
        (True, "not a size"),
        (4.0, "not a size"),
    ],
)
def test_ambiguous_or_malformed_memory_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        cluster.parse_memory(text)
    with pytest.raises(ValueError, match=message):
        cluster.job_script("slurm", memory=text)


@pytest.mark.parametrize("text, seconds", [("01:30:00", 5400), ("48:00:00", 172800), ("2-01:00:05", 176405)])
def test_walltime(text, seconds):
    assert cluster.parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["1h", "90", "01:60:00", "1:30", "00:00:00", None])
def test_malformed_walltime_is_refused_before_submission(text):
    with pytest.raises(ValueError, match="walltime"):
        cluster.parse_walltime(text)
    if text is not None:
        with pytest.raises(ValueError, match="walltime .* (malformed|must be longer)"):
            with cluster.start("slurm", walltime=text):
                pass


def test_unknown_kind_or_profile_is_refused():
    with pytest.raises(ValueError, match="unknown cluster kind 'slurmm'.*local, slurm"):
        with cluster.start("slurmm"):
            pass
    with pytest.raises(ValueError, match="unknown cluster profile 'nope'"):
        cluster.job_script(profile="nope")
    with pytest.raises(ValueError, match="minimum=3 exceeds maximum=2"):
        cluster.job_script("slurm", minimum=3, maximum=2)
    with pytest.raises(ValueError, match="previews batch jobs"):
        cluster.job_script("local")


def directives(script, prefix):
    return [line.split(None, 1)[1] for line in script.splitlines() if line.startswith(prefix)]


def test_slurm_job_script_contents():
    script = cluster.job_script(
        "slurm",
        cores=4,
        processes=2,
        memory="6GiB",
        walltime="02:00:00",
        queue="compute",
        account="ocean",
        job_extra_directives=["--exclusive"],
    )
    assert directives(script, "#SBATCH") == [
        "-J dask-worker",
        "-p compute",
        "-A ocean",
        "-n 1",
        "--cpus-per-task=4",
        "--mem=6G",
        "-t 02:00:00",
        "--exclusive",
    ]
    command = script.strip().splitlines()[-1].split()
    assert command[:4] == ["exec", sys.executable, "-m", "distributed.cli.dask_worker"]  # the job ends with its worker
    option = dict(zip(command[3:], command[4:], strict=False))
    assert option["--nthreads"] == "2" and option["--nworkers"] == "2"
    assert option["--memory-limit"] == "3GiB"  # half of the job's 6GiB for each process
    assert "--lifetime" not in command  # not adaptive


@pytest.mark.parametrize(
    "kind, prefix, walltime",
    [
        ("slurm", "#SBATCH", "-t 10:00:00"),
        ("pbs", "#PBS", "-l walltime=10:00:00"),
        ("sge", "#$", "-l h_rt=10:00:00"),
        ("lsf", "#BSUB", "-W 10:00"),
    ],
)
def test_adaptive_workers_leave_before_the_walltime(kind, prefix, walltime):
    script = cluster.job_script(kind, walltime="10:00:00", minimum=1, maximum=8)
    assert walltime in directives(script, prefix)
    command = script.strip().splitlines()[-1].split()
    option = dict(zip(command, command[1:], strict=False))
    life, stagger = (int(option[f"--{name}"].rstrip("s")) for name in ("lifetime", "lifetime-stagger"))
    assert 0 < stagger and life + 2 * stagger < 10 * 3600  # the latest worker leaves a stagger early
    assert cluster.lifetime(10 * 3600) == (life, stagger)


def test_local_cluster_gives_the_threaded_results_and_couples_chunks(capsys):
    data = inputs()
    with dask.config.set(scheduler="threads"):
        threaded = compute(*data)
    check_oracles(threaded, *data)
    assert default_target() != 16 * 2**20
    with cluster.start("local", workers=2, threads=8, memory="1GiB") as client:
        assert len(client.nthreads()) == 2
        assert client.run(worker_facts) and all(root == ROOT for root, _ in client.run(worker_facts).values())
        assert default_target() == 2**30 // (8 * 8)  # worker memory / (threads x 8 chunks in memory)
        distributed = compute(*data)
    assert_identical(distributed, threaded)
    assert capsys.readouterr().err.count("dashboard at http") == 1


def test_local_cluster_with_the_numba_cache_off(monkeypatch):
    monkeypatch.setenv("OCEANFLOW_NUMBA_CACHE", "0")
    data = inputs(seed=1)
    with cluster.start("local", workers=1, threads=2, memory="1GiB") as client:
        assert [cache for _, cache in client.run(worker_facts).values()] == [False]
        distributed = compute(*data)
    check_oracles(distributed, *data)


def test_local_cluster_closes_on_an_exception():
    with pytest.raises(ZeroDivisionError):
        with cluster.start("local", workers=1, threads=1, memory="1GiB") as client:
            scheduler = client.scheduler.address
            raise ZeroDivisionError
    assert client.status == "closed"
    from distributed import Client

    with pytest.raises(OSError):
        Client(scheduler, timeout=1)


def test_local_memory_beyond_this_machine_is_refused():
    with pytest.raises(ValueError, match="this machine has"):
        with cluster.start("local", workers=2, memory="1000TiB"):
            pass


def test_scheduler_file_joins_a_running_cluster_and_leaves_it_running(tmp_path):
    from distributed import Client, LocalCluster

    path = tmp_path / "scheduler.json"
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as running, Client(running) as owner:
        owner.write_scheduler_file(str(path))
        with cluster.start("scheduler_file", scheduler_file=str(path), timeout=10) as client:
            assert client.scheduler.address == running.scheduler_address
            assert client.submit(np.add, 1, 2).result() == 3
        assert owner.submit(np.add, 2, 2).result() == 4
    with pytest.raises(cluster.ClusterStartError, match="no scheduler file"):
        with cluster.start("scheduler_file", scheduler_file=str(tmp_path / "missing.json"), timeout=0.5):
            pass


# ---------------------------------------------------------------- memory asked of each batch system, exactly

#: How each batch system reads the units of its memory directive (its documentation, not dask-jobqueue's code).
SYSTEM_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "kb": 2**10, "mb": 2**20, "gb": 2**30, "b": 1, "": 1}


def requested_bytes(kind, script):
    """The job's memory in bytes as SLURM (--mem), PBS (mem=) or LSF (-M in KB, LSF_UNIT_FOR_LIMITS) reads it."""
    import re

    pattern = {
        "slurm": r"#SBATCH --mem=(\d+)([KMGT]?)\n",
        "pbs": r":mem=(\d+)(b|kb|mb|gb)\b",
        "lsf": r"#BSUB -M (\d+)()\n",
    }
    number, unit = re.search(pattern[kind], script).groups()
    return int(number) * (SYSTEM_UNITS[unit] if kind != "lsf" else 2**10)


@pytest.mark.parametrize("kind", ["slurm", "pbs", "lsf"])
@pytest.mark.parametrize(
    "memory, processes", [("2GB", 1), ("2GB", 2), ("6GiB", 2), ("1.5GB", 1), ("1536MiB", 3), ("12GB", 4), ("3000MB", 1)]
)
def test_batch_jobs_ask_for_exactly_the_memory_given(kind, memory, processes):
    from dask.utils import parse_bytes

    asked = cluster.parse_memory(memory)
    script = cluster.job_script(kind, memory=memory, cores=processes, processes=processes)
    requested = requested_bytes(kind, script)
    resolution = {"slurm": 2**20, "pbs": 1, "lsf": 2**10}[kind]  # SLURM keeps whole MiB, LSF counts KB by default
    assert asked <= requested < asked + resolution
    command = script.strip().splitlines()[-1].split()
    worker_limit = parse_bytes(command[command.index("--memory-limit") + 1])
    assert worker_limit == asked // processes  # dask-jobqueue's own: format_bytes, two decimals


def test_sge_workers_share_the_job_memory_exactly():
    script = cluster.job_script("sge", memory="3GB", cores=3, processes=3)
    assert "--memory-limit 1GB" in script


# ---------------------------------------------------------------- requests refused before anything starts


@pytest.mark.parametrize(
    "kind, settings, message",
    [
        ("local", {"memory": "0GiB"}, "memory '0GiB' must be more than zero"),
        ("local", {"memory": "1KiB"}, r"memory='1KiB' per worker gives each dask worker 1KiB, below the 512MiB"),
        ("local", {"workers": 0}, r"workers=0 must be a whole number >= 1 \(for workers only as work arrives"),
        ("local", {"threads": 0}, "threads=0 must be a whole number >= 1"),
        ("local", {"workers": 2.5}, "workers=2.5 must be a whole number"),
        ("local", {"maximum": 0}, "maximum=0 must be a whole number >= 1"),
        ("local", {"timeout": 0}, "timeout=0 must be a number of seconds > 0"),
        ("local", {"processes": "yes"}, "processes='yes' must be True, False or None"),
        ("slurm", {"jobs": 0}, "jobs=0 must be a whole number >= 1"),
        ("slurm", {"processes": 0}, r"processes=0 must be a whole number >= 1 \(per job\)"),
        ("slurm", {"memory": "100MB"}, r"memory='100MB' per job / processes=1 gives each dask worker 100MB"),
        ("slurm", {"memory": "1GiB", "cores": 4, "processes": 4}, "gives each dask worker 256MiB, below the 512MiB"),
        ("slurm", {"cores": 3, "processes": 2}, "cores=3 is not a multiple of processes=2"),
        ("ssh", {"memory": "1KiB"}, "gives each dask worker 1KiB"),
        ("ssh", {"hosts": ["onlyone"]}, "needs hosts=.scheduler_host, worker_host"),
    ],
)
def test_requests_that_could_start_no_working_worker_are_refused_before_anything_starts(kind, settings, message):
    import psutil

    before = set(psutil.Process().children(recursive=True))
    with pytest.raises(ValueError, match=message):
        with cluster.start(kind, **settings):
            pass
    assert set(psutil.Process().children(recursive=True)) <= before


def test_the_memory_floor_lets_a_worker_compute(tmp_path):
    """At the floor, the workload of every cluster test runs (below it, distributed's workers restart or pause)."""
    data = inputs(seed=3)
    floor = f"{cluster.MIN_WORKER_MEMORY}B"
    with cluster.start("local", workers=1, threads=2, memory=floor, processes=True) as client:
        assert list(client.scheduler_info()["workers"].values())[0]["memory_limit"] == cluster.MIN_WORKER_MEMORY
        got = compute(*data)
    check_oracles(got, *data)


# ---------------------------------------------------------------- the local cluster in a script without a main guard

SCRIPT = """\
import os
import numpy as np
import oceanflow

x = np.arange(12.0).reshape(3, 4)
{guard}options = dict(workers=2, threads=1, memory="1GiB", dashboard_address=":0"{processes})
{guard}with oceanflow.cluster.start("local", **options) as c:
{guard}    pids = set(c.run(os.getpid).values())
{guard}    y = oceanflow.polyval(__import__("dask.array").array.from_array(x, chunks=2), [2.0, 1.0]).compute()
{guard}    print("workers in this process:", pids == {{os.getpid()}}, "equal:", bool((y == 2 * x + 1).all()))
"""


def run_script(tmp_path, guard="", processes=""):
    import subprocess

    path = tmp_path / "analysis.py"
    body = SCRIPT.format(guard="    " if guard else "", processes=processes)
    path.write_text(body.replace("x = np", 'if __name__ == "__main__":\n    x = np') if guard else body)
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, env=_env_with_root(), timeout=120
    )


def _env_with_root():
    import os

    return {**os.environ, "PYTHONPATH": ROOT}


def test_a_script_without_main_guard_gets_thread_workers_and_one_warning(tmp_path):
    run = run_script(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "workers in this process: True equal: True"
    assert "Traceback" not in run.stderr and "Nanny" not in run.stderr
    warning = [line for line in run.stderr.splitlines() if "UserWarning" in line]
    assert len(warning) == 1 and 'if __name__ == "__main__":' in warning[0], run.stderr
    assert warning[0].startswith(f"{tmp_path / 'analysis.py'}:7:")  # points at the script's start() line


def test_a_script_without_main_guard_asking_for_processes_stops_at_once(tmp_path):
    run = run_script(tmp_path, processes=", processes=True")
    assert run.returncode == 1
    assert "Nanny" not in run.stderr and run.stderr.count("Traceback") == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: processes=True: worker processes import this script anew")
    assert '`if __name__ == "__main__":`' in last


def test_a_script_with_main_guard_gets_worker_processes(tmp_path):
    run = run_script(tmp_path, guard=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "workers in this process: False equal: True"
    assert "UserWarning" not in run.stderr


@pytest.mark.parametrize(
    "source, line, rerun",
    [
        ("start()\n", 1, True),
        ('if __name__ == "__main__":\n    start()\n', 2, False),
        ('if "__main__" == __name__:\n    start()\n', 2, False),
        ('if __name__ != "__main__":\n    start()\n', 2, True),
        ('if __name__ == "__mp_main__":\n    start()\n', 2, True),
        ("if True:\n    start()\n", 2, True),
        ('if __name__ == "__main__":\n    pass\nelse:\n    start()\n', 4, True),
        ("def main():\n    start()\n\nmain()\n", 4, True),
    ],
)
def test_main_guard_detection(source, line, rerun):
    import ast

    from oceanflow.cluster.local import _under_main_guard

    assert _under_main_guard(ast.parse(source), line) is not rerun
