"""Developer and CI tasks. ``nox`` runs lint, typecheck, tests and docs; ``nox -s bench``
benchmarks.

Virtual environments are made with uv when it is installed (``pip install "nox[uv]"``), which
resolves the whole dependency set in one run in seconds.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
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
    """ruff check, ruff format --check, and the import-linter contracts of pyproject.toml
    (the layers: imports point down only; the engine never imports requests, fsspec or tqdm)."""
    session.install("--group", "lint")
    session.run("ruff", "check", "resumable", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "resumable", "tests", "benchmarks", "noxfile.py")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".", "--group", "typecheck")
    session.run("mypy", "--strict", "resumable")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml), built strictly: any warning fails.

    A broken link or anchor, a page error, or a docstring that mkdocstrings cannot parse stops
    the build. ``nox -s docs -- serve`` serves it with live reload instead.
    """
    session.install("-e", ".", "--group", "docs")
    env = {"NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner about its successor
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=env)
        return
    site = os.path.join(session.create_tmp(), "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, *session.posargs, env=env)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against curl, aria2c, requests, boto3 and s3fs (see docs/benchmarks.md).

    Every script appends its results to one JSON-lines file (``RESUMABLE_BENCH_RESULTS``) and
    ``benchmarks/summary.py`` ends the session with one table of scenarios, ratios and targets.
    ``nox -s bench -- --rounds 7`` passes options to every benchmark script;
    ``nox -s bench -- --smoke`` runs each once on tiny sizes (checks the chain, measures
    nothing). A script that
    lacks its tools (nginx, curl, aria2c) exits 2 and the others still run.
    """
    _system_deps(session)
    session.install("-e", ".", "--group", "test")  # moto, s3fs, boto3, gcsfs, adlfs for cloud
    results = os.path.join(session.create_tmp(), "bench-results.jsonl")
    if os.path.exists(results):
        os.remove(results)
    env = {"RESUMABLE_BENCH_RESULTS": results}
    for script, *options in (
        ("http_vs_curl.py", "--naive", "--floor"),
        ("segmented.py",),
        ("batch.py", "--naive", "--floor", "--processes", "2"),
        ("resume.py",),
        ("lazy.py",),
        ("prefetch.py",),
        ("cooperation.py",),
        ("adaptive.py",),
        ("s3.py",),
        ("native.py",),
        ("import_cost.py",),
        ("cloud.py",),
    ):
        session.run(
            "python",
            f"benchmarks/{script}",
            *options,
            *session.posargs,
            env=env,
            success_codes=[0, 2],
        )
    session.run("python", "benchmarks/summary.py", results)


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
        "tests/faults/test_torture.py",
        "tests/faults/test_fault_matrix.py",
        "tests/faults/test_bad_inputs.py",
        "tests/faults/test_racing.py",
        *session.posargs,
        env={"RESUMABLE_TORTURE_ROUNDS": rounds, "RESUMABLE_REPEATS": repeats},
    )
