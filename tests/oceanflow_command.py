"""``python -m oceanflow ARGS`` in a process of its own, without paying the imports each time.

A subprocess of the command spends most of its time importing xarray, dask, numba
and oceanflow, seconds on CI's 2 cores, and the CLI tests run it dozens of times.
:class:`CommandServer` starts one Python that imports ``oceanflow.cli`` and the
libraries that reading a file imports (and computes nothing, starts no thread),
then forks it for each command.  The child
takes the command's working directory, environment and ``argv``, reads
``/dev/null`` and writes its stdout and stderr to files, and runs
``oceanflow.__main__`` with :mod:`runpy` as ``python -m`` does; its exit is the
interpreter's own (SystemExit's status, or a traceback and 1, atexit handlers
run; the server's objects are frozen with :func:`gc.freeze`, so that the child's
exit does not walk them).  So each command is still a process, with its own stdout, stderr and exit
status; only the imports are shared.

The variables read at start-up or import time (``PYTHON*``, ``OCEANFLOW_*``,
``NUMBA_*``, ``DASK_*``) are the server's own: :func:`run` keeps one server per
set of them, started when first needed and closed at exit.
``tests/test_cli.py`` checks that a server and a plain subprocess give the same
status, stdout and stderr.

Example::

    run = oceanflow_command.run(["--version"], cwd=tmp_path)   # a subprocess.CompletedProcess
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile

#: Environment variables read when Python starts or oceanflow and its libraries are imported.
STARTUP_PREFIXES = ("PYTHON", "OCEANFLOW_", "NUMBA_", "DASK_")

SERVER = r"""
import gc, importlib, json, os, runpy, sys, threading
import xarray
import oceanflow.cli  # the imports every command pays; nothing computed, no thread started

xarray.backends.list_engines()  # and those that opening any file pays: xarray's backends
for name in ("dask.array", "dask.diagnostics", "distributed", "zarr", "netCDF4", "h5netcdf", "sparse", "pint"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # the command meets the same error, where it needs the module
assert threading.active_count() == 1, threading.enumerate()  # fork copies this thread only

reply = os.dup(1)
for line in iter(sys.stdin.buffer.readline, b""):
    request = json.loads(line)
    gc.freeze()  # the imported objects: not copied by the child's collections, not collected at its exit
    pid = os.fork()
    if pid == 0:
        os.close(reply)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        sys.argv = ["-m", *request["args"]]
        runpy.run_module("oceanflow", run_name="__main__", alter_sys=True)
        raise SystemExit(0)  # as the interpreter ends when the module returns
    os.write(reply, f"{pid}\n".encode())
    status = os.waitpid(pid, 0)[1]
    os.write(reply, f"{os.waitstatus_to_exitcode(status)}\n".encode())
"""


def _startup_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES)}


class CommandServer:
    """One pre-imported Python, forked for every ``python -m oceanflow`` command (see the module docstring)."""

    def __init__(self, env: dict):
        self.env = dict(env)
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            cwd=tempfile.gettempdir(),
        )
        self._pending = b""

    def __enter__(self) -> CommandServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _read_line(self, deadline: float | None) -> str:
        import time

        while b"\n" not in self._pending:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the command server exited with status {self.process.wait()}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def run(self, args, *, cwd, env: dict, timeout: float | None = None) -> subprocess.CompletedProcess:
        """``python -m oceanflow ARGS`` in ``cwd`` with ``env``: its status, stdout and stderr (text)."""
        import time

        args = [str(a) for a in args]
        if _startup_env(env) != _startup_env(self.env):
            raise ValueError("this server was started with other start-up variables; use run()")
        with tempfile.TemporaryDirectory() as folder:
            out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
            request = {"args": args, "cwd": str(cwd), "env": dict(env), "stdout": out, "stderr": err}
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            deadline = None if timeout is None else time.monotonic() + timeout
            pid = int(self._read_line(None))
            try:
                status = int(self._read_line(deadline))
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._read_line(None)
                raise subprocess.TimeoutExpired(["python", "-m", "oceanflow", *args], timeout) from None
            with open(out, errors="replace") as f_out, open(err, errors="replace") as f_err:
                stdout, stderr = f_out.read(), f_err.read()
        return subprocess.CompletedProcess(["python", "-m", "oceanflow", *args], status, stdout, stderr)


_servers: dict[frozenset, CommandServer] = {}


def run(args, *, cwd, env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m oceanflow ARGS`` in ``cwd`` with ``env`` (default: this process's), as by
    ``subprocess.run(..., capture_output=True, text=True)``, on a server for ``env``'s start-up variables."""
    env = dict(os.environ if env is None else env)
    key = frozenset(_startup_env(env).items())
    server = _servers.get(key)
    if server is None or server.process.poll() is not None:
        server = _servers[key] = CommandServer(env)
    return server.run(args, cwd=cwd, env=env, timeout=timeout)


def subprocess_run(args, *, cwd, env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """The same as :func:`run`, as a plain ``python -m oceanflow`` subprocess (the reference)."""
    command = [sys.executable, "-m", "oceanflow", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@atexit.register
def _close_servers() -> None:
    for server in _servers.values():
        server.close()
