"""Developer and CI tasks. ``nox`` runs lint, typecheck and tests; ``nox -s bench`` benchmarks.

Virtual environments are made with uv when it is installed (``pip install "nox[uv]"``), which
resolves the whole dependency set in one run in seconds.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = os.environ.get("NOX_PYTHON") or None  # None: the Python running nox


def _system_deps(session: nox.Session) -> None:
    """nginx (and curl) from Debian, when missing: the tests and benchmarks serve files with it."""
    session.run("bash", ".ci/install-system-deps", external=True)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite, against real servers started on loopback."""
    _system_deps(session)
    session.install("-e", ".", "--group", "test")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("--group", "lint")
    session.run("ruff", "check", "resumable", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "resumable", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".", "--group", "typecheck")
    session.run("mypy", "--strict", "resumable")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against curl and aria2c on a loopback nginx (see docs/benchmarks.md).

    ``nox -s bench -- --rounds 7`` passes options to every benchmark script.
    """
    _system_deps(session)
    session.install("-e", ".", "--group", "test")  # moto, s3fs and boto3 for the S3 benchmark
    session.run("python", "benchmarks/http_vs_curl.py", "--naive", *session.posargs)
    session.run("python", "benchmarks/segmented.py", *session.posargs)
    session.run("python", "benchmarks/batch.py", *session.posargs)
    session.run("python", "benchmarks/s3.py", *session.posargs)


@nox.session(python=PYTHON)
def torture(session: nox.Session) -> None:
    """The reliability suite in full (see docs/reliability.md).

    kill -9 at random moments: ``RESUMABLE_TORTURE_ROUNDS`` rounds (default 25) in each of four
    modes (HTTP and S3, single stream and segmented), 100 rounds by default. Then the fault
    matrix and the racing processes ``RESUMABLE_REPEATS`` times each (default 5), and the
    bad-input catalogue.
    """
    _system_deps(session)
    session.install("-e", ".", "--group", "test")
    rounds = os.environ.get("RESUMABLE_TORTURE_ROUNDS", "25")
    repeats = os.environ.get("RESUMABLE_REPEATS", "5")
    session.run(
        "python",
        "-m",
        "pytest",
        "-s",
        "-p",
        "no:randomly",
        "-o",
        "timeout=3600",
        "tests/test_torture.py",
        "tests/test_fault_matrix.py",
        "tests/test_bad_inputs.py",
        "tests/test_racing.py",
        *session.posargs,
        env={"RESUMABLE_TORTURE_ROUNDS": rounds, "RESUMABLE_REPEATS": repeats},
    )
