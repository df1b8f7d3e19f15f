"""The ``oceanflow`` command through its real entry point (``python -m oceanflow``, a process of its own:
forked from a pre-imported Python by tests/oceanflow_command.py, which is checked against a plain subprocess).

Every output is compared with an independent oracle: xarray's groupby, NumPy's
polyval, the ``gsw`` TEOS-10 library, and oceanflow's own Python API on the
same input.
"""

import os
from pathlib import Path

import numpy as np
import oceanflow_command
import pytest
import xarray as xr

import oceanflow
import oceanflow.demo
from oceanflow import datasets

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["demo", "climatology", "anomaly", "polyval", "density", "chunks", "cluster", "mhw"]


def command_env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def oceanflow_cmd(*args, cwd, check=True):
    """Run ``python -m oceanflow ARGS`` on this checkout's code; return the CompletedProcess."""
    run = oceanflow_command.run(args, cwd=cwd, env=command_env(), timeout=300)
    if check:
        assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Sample files: 3 years of monthly and 2 years of daily SST (noleap), and an ocean."""
    folder = tmp_path_factory.mktemp("inputs")
    monthly = datasets.sst(years=3, resolution=20.0).to_dataset()
    monthly["sst"].values[5, 2, 3] = np.nan  # a gap in the ocean, besides the land
    oceanflow.save(monthly.chunk({"time": 12}), folder / "sst.zarr")
    oceanflow.save(monthly, folder / "sst.nc")
    daily = datasets.sst(years=2, freq="day", calendar="noleap", resolution=45.0).to_dataset()
    oceanflow.save(daily, folder / "daily.zarr")
    ocean = datasets.ocean(levels=6, resolution=20.0).rename(SA="salt", CT="temp")
    oceanflow.save(ocean, folder / "ocean.zarr")
    return folder


def read(path):
    """An output as the API returns it (a climatology's CF time axis back as its groups)."""
    return oceanflow.open_dataset(path, chunks=None).load()


# ---------------------------------------------------------------- help


def test_help_lists_every_subcommand_with_examples(tmp_path):
    run = oceanflow_cmd("--help", cwd=tmp_path)
    for name in SUBCOMMANDS:
        assert f"\n    {name}" in run.stdout
    assert "examples:" in run.stdout and "oceanflow demo" in run.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_has_common_options_and_examples(name, tmp_path):
    run = oceanflow_cmd(name, "--help", cwd=tmp_path)
    assert run.stdout.startswith(f"usage: oceanflow {name}")
    for option in ("--cluster", "--chunks", "--overwrite", "--quiet", "--debug"):
        assert option in run.stdout
    assert f"examples:\n  oceanflow {name}" in run.stdout


def test_version(tmp_path):
    assert oceanflow_cmd("--version", cwd=tmp_path).stdout.strip() == f"oceanflow {oceanflow.__version__}"


def test_the_forked_command_is_the_plain_subprocess(tmp_path):
    """tests/oceanflow_command.py, which runs these tests' commands: the same status, stdout and stderr as
    ``python -m oceanflow`` started anew (help, a failure naming the working directory, a traceback)."""
    cases = [["polyval", "--help"], ["chunks", "missing.nc"], ["chunks", "missing.nc", "--debug"]]
    for args in cases:
        forked = oceanflow_command.run(args, cwd=tmp_path, env=command_env(), timeout=300)
        plain = oceanflow_command.subprocess_run(args, cwd=tmp_path, env=command_env(), timeout=300)
        assert (forked.returncode, forked.stdout) == (plain.returncode, plain.stdout), args
        if "--debug" in args:  # the same exception, raised through the same frames of oceanflow
            assert forked.stderr.startswith("Traceback") and plain.stderr.startswith("Traceback")
            oceanflow_frames = [line for line in plain.stderr.splitlines() if "oceanflow/" in line]
            assert oceanflow_frames and all(line in forked.stderr for line in oceanflow_frames)
            assert forked.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]
        else:
            assert forked.stderr == plain.stderr, args


# ---------------------------------------------------------------- computations vs oracles


@pytest.mark.parametrize("source", ["sst.zarr", "sst.nc"])
def test_climatology_equals_the_api_and_xarray_groupby(inputs, tmp_path, source):
    run = oceanflow_cmd("climatology", inputs / source, "-o", "clim.zarr", cwd=tmp_path)
    assert "wrote clim.zarr" in run.stdout
    assert "100% Completed" in run.stderr  # dask's progress bar
    got = read(tmp_path / "clim.zarr")
    sst = read(inputs / source).sst
    with xr.set_options(use_flox=False):
        expected = sst.groupby("time.month").mean()
    np.testing.assert_allclose(got.sst.values, expected.values, rtol=1e-6)
    xr.testing.assert_allclose(got.sst, oceanflow.climatology(sst, "month"))
    assert f"oceanflow {oceanflow.__version__} climatology {inputs / source} -o clim.zarr" in got.attrs["history"]
    assert "climatology_bounds" in got


def test_climatology_season_std_base_var_and_quiet(inputs, tmp_path):
    run = oceanflow_cmd(
        "climatology",
        inputs / "sst.zarr",
        "-o",
        "c.nc",
        "--freq",
        "season",
        "--stat",
        "std",
        "--base",
        "2001",
        "2002",
        "--var",
        "sst",
        "--quiet",
        cwd=tmp_path,
    )
    assert run.stdout == "" and "Completed" not in run.stderr
    sst = read(inputs / "sst.zarr").sst.sel(time=slice("2001", "2002"))
    with xr.set_options(use_flox=False):
        expected = sst.groupby("time.season").std()
    got = read(tmp_path / "c.nc").sst
    np.testing.assert_allclose(got.sel(season=expected.season).values, expected.values, rtol=1e-5)


def test_climatology_dayofyear_on_a_noleap_calendar(inputs, tmp_path):
    oceanflow_cmd(
        "climatology",
        inputs / "daily.zarr",
        "-o",
        "d.zarr",
        "--freq",
        "dayofyear",
        "--chunks",
        "time=100",
        cwd=tmp_path,
    )
    got = read(tmp_path / "d.zarr").sst
    sst = read(inputs / "daily.zarr").sst
    assert sst.time.dt.calendar == "noleap" and got.sizes["dayofyear"] == 365
    with xr.set_options(use_flox=False):
        expected = sst.groupby("time.dayofyear").mean()  # noleap: ordinal day == month-day
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-6)


def test_anomaly_computed_here_and_from_a_climatology_file(inputs, tmp_path):
    oceanflow_cmd("anomaly", inputs / "sst.zarr", "-o", "a.zarr", cwd=tmp_path)
    oceanflow_cmd("climatology", inputs / "sst.zarr", "-o", "c.zarr", "--base", "2000", "2001", cwd=tmp_path)
    oceanflow_cmd("anomaly", inputs / "sst.zarr", "-o", "b.zarr", "--clim", "c.zarr", cwd=tmp_path)
    sst = read(inputs / "sst.zarr").sst
    with xr.set_options(use_flox=False):
        whole = sst.groupby("time.month") - sst.groupby("time.month").mean()
        base = sst.sel(time=slice("2000", "2001")).groupby("time.month").mean()
        from_base = sst.groupby("time.month") - base
    np.testing.assert_allclose(read(tmp_path / "a.zarr").sst.values, whole.values, atol=1e-5)
    np.testing.assert_allclose(read(tmp_path / "b.zarr").sst.values, from_base.values, atol=1e-5)


def test_standardized_anomaly(inputs, tmp_path):
    oceanflow_cmd("anomaly", inputs / "sst.zarr", "-o", "z.zarr", "--kind", "standardized", cwd=tmp_path)
    sst = read(inputs / "sst.zarr").sst.astype(np.float64)  # float32 arithmetic in the oracle loses digits
    with xr.set_options(use_flox=False):
        groups = sst.groupby("time.month")
        expected = (groups - groups.mean()).groupby("time.month") / groups.std()
    # oceanflow keeps float32 data in float32: (x - mean) carries float32 rounding of x, over std
    atol = 4 * np.finfo(np.float32).eps * float(abs(sst).max()) / float(groups.std().min())
    np.testing.assert_allclose(read(tmp_path / "z.zarr").sst.values, expected.values, rtol=1e-5, atol=atol)


def test_polyval_equals_numpy(inputs, tmp_path):
    coeffs = [1e-4, -2e-3, 1.01, 0.05]
    oceanflow_cmd("polyval", inputs / "sst.nc", "-o", "p.zarr", "--coeffs", *coeffs, cwd=tmp_path)
    x = read(inputs / "sst.nc").sst.values.astype(np.float64)
    np.testing.assert_allclose(read(tmp_path / "p.zarr").sst.values, np.polyval(coeffs, x), rtol=1e-6)


def test_density_equals_gsw(inputs, tmp_path):
    gsw = pytest.importorskip("gsw")
    oceanflow_cmd(
        "density",
        inputs / "ocean.zarr",
        "-o",
        "rho.zarr",
        "--sa",
        "salt",
        "--ct",
        "temp",
        "--what",
        "rho",
        "sigma0",
        "alpha",
        cwd=tmp_path,
    )
    got = read(tmp_path / "rho.zarr")
    ocean = read(inputs / "ocean.zarr")
    SA, CT, p = ocean.salt.values, ocean.temp.values, ocean.p.values
    np.testing.assert_allclose(got.rho.values, gsw.rho(SA, CT, p), rtol=1e-12)
    np.testing.assert_allclose(got.sigma0.values, gsw.sigma0(SA, CT), rtol=1e-10)
    np.testing.assert_allclose(got.alpha.values, gsw.alpha(SA, CT, p), rtol=1e-9)
    assert sorted(got.data_vars) == ["alpha", "rho", "sigma0"]


def test_chunks_prints_the_suggestion_and_why(inputs, tmp_path):
    for core in ([], ["--core-dim", "time"]):
        run = oceanflow_cmd("chunks", inputs / "sst.zarr", *core, "--target", "1kB", cwd=tmp_path)
        ds = oceanflow.open_dataset(inputs / "sst.zarr")
        expected = oceanflow.suggest_chunks(ds, core_dims=core[1:], target=1000)
        first = run.stdout.splitlines()[0]
        assert first == "chunks: " + ",".join(f"{d}={n}" for d, n in expected.items())
        assert "target 0.98 kiB" in run.stdout
    assert expected["time"] == ds.sizes["time"] and "time: 36 of 36 (core dimension, kept whole)" in run.stdout
    stored = ds.sst.encoding["preferred_chunks"]
    assert all(expected[d] % stored[d] == 0 or expected[d] == ds.sizes[d] for d in stored)


def test_overwrite_replaces_only_when_asked(inputs, tmp_path):
    oceanflow_cmd("climatology", inputs / "sst.zarr", "-o", "c.zarr", cwd=tmp_path)
    refused = oceanflow_cmd(
        "climatology", inputs / "sst.zarr", "-o", "c.zarr", "--stat", "max", cwd=tmp_path, check=False
    )
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    sst = read(inputs / "sst.zarr").sst
    with xr.set_options(use_flox=False):
        mean, top = sst.groupby("time.month").mean(), sst.groupby("time.month").max()
    np.testing.assert_allclose(read(tmp_path / "c.zarr").sst, mean, rtol=1e-6)  # float32 sums in other orders
    oceanflow_cmd("climatology", inputs / "sst.zarr", "-o", "c.zarr", "--stat", "max", "--overwrite", cwd=tmp_path)
    np.testing.assert_array_equal(read(tmp_path / "c.zarr").sst, top)


# ---------------------------------------------------------------- the demonstration


def test_demo_writes_correct_outputs_and_a_figure(tmp_path):
    run = oceanflow_cmd("demo", "--dir", "out", "--size", "tiny", cwd=tmp_path)
    out = tmp_path / "out"
    for name in (
        "sample_sst.zarr",
        "sample_ocean.zarr",
        "sst_climatology.zarr",
        "sst_anomaly.zarr",
        "density.zarr",
        "oceanflow-demo.png",
    ):
        assert (out / name).exists() and f"out/{name}" in run.stdout
    png = (out / "oceanflow-demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    sst = read(out / "sample_sst.zarr").sst
    xr.testing.assert_identical(sst.drop_attrs(), datasets.sst(**oceanflow.demo.SIZES["tiny"]["sst"]).drop_attrs())
    with xr.set_options(use_flox=False):
        clim = sst.groupby("time.month").mean()
        atol = 2 * np.finfo(np.float32).eps * float(abs(sst).max())  # float32 sums of values up to ~30
        np.testing.assert_allclose(read(out / "sst_climatology.zarr").sst, clim, rtol=1e-6, atol=atol)
        np.testing.assert_allclose(read(out / "sst_anomaly.zarr").sst, sst.groupby("time.month") - clim, atol=1e-5)
    gsw = pytest.importorskip("gsw")
    ocean, density = read(out / "sample_ocean.zarr"), read(out / "density.zarr")
    np.testing.assert_allclose(density.rho, gsw.rho(ocean.SA, ocean.CT, ocean.p), rtol=1e-12)
    np.testing.assert_allclose(density.sigma0, gsw.sigma0(ocean.SA, ocean.CT), rtol=1e-10)
    trend = float(run.stdout.split("area-mean trend ")[1].split()[0])
    assert abs(trend - 10 * datasets.SST_TREND) < 0.06  # 3 years of noisy data: a loose estimate

    again = oceanflow_cmd("demo", "--dir", "out", "--size", "tiny", cwd=tmp_path, check=False)
    assert again.returncode == 1 and "--overwrite" in again.stderr and len(again.stderr.splitlines()) == 1
    oceanflow_cmd("demo", "--dir", "out", "--size", "tiny", "--overwrite", "--quiet", cwd=tmp_path)


# ---------------------------------------------------------------- bad arguments: one line, non-zero


BAD = [
    ([], 2, "choose a subcommand"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["climatology", "{sst}"], 2, "required: -o/--output"),
    (["climatology", "{sst}", "-o", "c.zarr", "--freq", "week"], 2, "invalid choice: 'week'"),
    (["climatology", "{sst}", "-o", "c.txt"], 2, "must end in .zarr or .nc"),
    (["climatology", "{sst}", "-o", "c.zarr", "--chunks", "time:5"], 2, "DIM=SIZE"),
    (["climatology", "{sst}", "-o", "c.zarr", "--base", "2001"], 2, "expected 2 arguments"),
    (["climatology", "missing.nc", "-o", "c.zarr"], 1, "missing.nc: no such file or directory"),
    (["climatology", "{sst}", "-o", "c.zarr", "--base", "1950", "1960"], 1, "outside the data"),
    (["climatology", "{sst}", "-o", "c.zarr", "--var", "temp"], 2, "no variable 'temp' in the input"),
    (["climatology", "{ocean}", "-o", "c.zarr"], 2, "needs a time dimension"),
    (["anomaly", "{sst}", "-o", "a.zarr", "--clim", "{sst}", "--base", "2000", "2001"], 2, "with --clim, leave it out"),
    (
        ["anomaly", "{daily}", "-o", "a.zarr", "--freq", "dayofyear", "--clim", "{sst}"],
        1,
        "not one per dayofyear group",
    ),
    (["polyval", "{sst}", "-o", "p.zarr"], 2, "required: --coeffs"),
    (["polyval", "{sst}", "-o", "p.zarr", "--coeffs", "1", "two"], 2, "invalid float value: 'two'"),
    (["polyval", "{sst}", "{sst}", "-o", "p.zarr", "--coeffs", "1"], 2, "unrecognized arguments"),
    (["density", "{ocean}", "-o", "r.zarr"], 2, "no --sa SA, --ct CT"),
    (["density", "{ocean}", "-o", "r.zarr", "--sa", "salt", "--ct", "temp", "--what", "pH"], 2, "invalid choice: 'pH'"),
    (["chunks", "{sst}", "--core-dim", "depth"], 2, "--core-dim 'depth' is not a dimension"),
    (["chunks", "{sst}", "--target", "lots"], 2, "not a size in bytes"),
    (["cluster", "--profile", "x"], 2, "--profile goes with --job-script"),
    (["demo", "--size", "huge"], 2, "invalid choice: 'huge'"),
]


@pytest.mark.parametrize("args, status, message", BAD, ids=[" ".join(a) or "nothing" for a, _, _ in BAD])
def test_bad_arguments_give_one_line_and_a_non_zero_status(inputs, tmp_path, args, status, message):
    paths = {"sst": inputs / "sst.zarr", "daily": inputs / "daily.zarr", "ocean": inputs / "ocean.zarr"}
    run = oceanflow_cmd(*[a.format(**paths) for a in args], cwd=tmp_path, check=False)
    assert run.returncode == status, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("oceanflow: error: "), run.stderr
    assert message in lines[0]
    assert not list(tmp_path.iterdir())  # nothing written


def test_debug_shows_the_traceback(tmp_path):
    run = oceanflow_cmd("climatology", "missing.nc", "-o", "c.zarr", "--debug", cwd=tmp_path, check=False)
    assert run.returncode == 1
    assert "Traceback (most recent call last)" in run.stderr and "FileNotFoundError" in run.stderr


# ---------------------------------------------------------------- clusters (oceanflow.cluster, issue 5)


def test_cluster_lists_kinds_and_profiles(tmp_path):
    from oceanflow import cluster

    run = oceanflow_cmd("cluster", cwd=tmp_path)
    assert run.stdout.splitlines()[0] == f"kinds: {', '.join(cluster.KINDS)}"
    for name in cluster.profiles():
        assert f"\n{name}: " in run.stdout


def test_cluster_prints_a_job_script(tmp_path):
    from oceanflow import cluster

    run = oceanflow_cmd("cluster", "--job-script", "slurm", cwd=tmp_path)
    assert run.stdout.strip() == cluster.job_script("slurm").strip()
    assert "#SBATCH" in run.stdout


def test_climatology_on_a_local_cluster_equals_threads(inputs, tmp_path):
    oceanflow_cmd("climatology", inputs / "sst.zarr", "-o", "threads.zarr", cwd=tmp_path)
    run = oceanflow_cmd("climatology", inputs / "sst.zarr", "-o", "local.zarr", "--cluster", "local", cwd=tmp_path)
    assert "100% Completed | " in run.stderr and "\r" not in run.stderr  # stderr is a log: a line per 10 %
    xr.testing.assert_identical(read(tmp_path / "local.zarr").sst, read(tmp_path / "threads.zarr").sst)
