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
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["oceanflow"]
    assert "oceanflow.yaml" in package_data


@pytest.mark.parametrize(
    "text, expected",
    [("4GiB", 4 * 2**30), ("512 MiB", 512 * 2**20), ("1.5TiB", int(1.5 * 2**40)), ("64kib", 64 * 1024), (1024, 1024)],
)
def test_memory_convention_is_dask_binary_units(text, expected):
    from dask.utils import parse_bytes

    assert cluster.parse_memory(text) == expected == parse_bytes(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("4GB", "ambiguous.*'4GiB'"),
        ("4G", "ambiguous.*'4GiB'"),
        ("4096", "ambiguous"),
        ("four GiB", "malformed"),
        ("4 GiB RAM", "malformed"),
        (0, "positive"),
        (True, "not a size"),
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
    assert option["--memory-limit"] == "3.00GiB"  # half of the job's 6GiB for each process
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


def test_importing_oceanflow_does_not_import_dask_jobqueue():
    import subprocess

    code = "import sys, oceanflow; print(oceanflow.cluster.KINDS, 'dask_jobqueue' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip().endswith("False")


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
