"""The fenced code blocks of README.md and docs/**/*.md, and how ``test_doc_examples`` runs them.

Kept apart from the test module so the rules (which blocks run, what is substituted) read in one
place. See ``tests/integration/test_doc_examples.py`` for the rules in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

PYTHON = {"python", "py", "pycon"}
SHELL = {"bash", "sh", "shell", "console"}
SAMPLES = {"text", "json", "http", "toml", "yaml", "ini", "csv", "tsv", "diff", "output"}
"""Languages of blocks that show output, a file format or a protocol exchange: never run."""

MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")

SETUP_COMMAND = re.compile(
    r"^(?:python3? -m )?(?:pip|nox)\b"  # installs packages, or runs the dev sessions
    r"|^bash \.ci/run\b"
    r"|^(?:\w+=\S+ )*(?:python3? )?benchmarks/"  # the benchmark scripts (nox -s bench runs them)
    r"|^(?:\w+=\S+ )+python3? -m nox\b"
)
"""Shell commands that install or run the project's own tooling: CI runs those itself."""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # the line of the opening fence, 1-based
    lang: str
    text: str
    marker: str | None  # "skip" or "continue"
    reason: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def doctest(self) -> bool:
        return self.lang in PYTHON and self.text.lstrip().startswith(">>>")


def parse(page: Path) -> list[Block]:
    """Every fenced block of ``page``, dedented, with the marker on the line before its fence."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        indent, lang = fence.groups()
        end = i + 1
        while not re.match(rf"^{indent}```\s*$", lines[end]):
            end += 1
        body = [line[len(indent) :] for line in lines[i + 1 : end]]
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        marker = MARKER.match(before)
        blocks.append(
            Block(
                page,
                i + 1,
                lang,
                "\n".join(body) + "\n",
                marker.group(1) if marker else None,
                marker.group(2) if marker else "",
            )
        )
        i = end + 1
    return blocks


def stray_markers(page: Path) -> list[str]:
    """Markers that do not sit right before a fence, or that use an unknown verb."""
    lines = page.read_text().splitlines()
    found = []
    for n, line in enumerate(lines):
        marker = MARKER.match(line)
        if marker is None:
            continue
        after = next((x for x in lines[n + 1 :] if x.strip()), "")
        if marker.group(1) not in ("skip", "continue") or not FENCE.match(after):
            found.append(f"{page.relative_to(ROOT)}:{n + 1}: {line.strip()}")
    return found


def program(block: Block, blocks: list[Block]) -> str:
    """The Python to run for ``block``: with ``continue``, the page's previous block comes first."""
    if block.marker != "continue":
        return block.text
    earlier = [
        b for b in blocks if b.page == block.page and b.line < block.line and b.lang in PYTHON
    ]
    if not earlier or earlier[-1].marker == "skip":
        raise AssertionError(f"{block.id}: 'continue' needs a runnable Python block before it")
    return program(earlier[-1], blocks) + "\n" + block.text


def shell_commands(text: str, lang: str = "bash") -> tuple[list[str], list[str]]:
    """(commands to run, setup commands left out) of a shell block.

    ``console`` blocks mark commands with ``$ ``: other lines are output. A line continued with
    ``\\`` is one command; ``a && b`` is split so a ``pip install`` in front does not hide a
    command that can run.
    """
    lines = text.splitlines()
    if lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1].rstrip() + " " + line.strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            joined.append(line.strip())
    run, setup = [], []
    for line in joined:
        for part in line.split(" && "):
            (setup if SETUP_COMMAND.match(part.strip()) else run).append(part.strip())
    return run, setup


def runnable(block: Block) -> bool:
    return block.lang in PYTHON or block.lang in SHELL


ALL_BLOCKS = [block for page in PAGES for block in parse(page)]
