"""The repository stands alone: nothing in it reaches outside its own root.

A fresh clone has nothing beside it, so every tracked file must find its data, judges and
programs inside the repository. These tests read the tracked files (``git ls-files``).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
SIBLING = ".." + "/" + "shared"  # built from parts, so that this file does not match itself
# Path(__file__) followed by .resolve(), .absolute(), .parent and .parents[N] steps
CLIMB = re.compile(
    r"Path\(__file__\)((?:\s*\.\s*(?:resolve\(\)|absolute\(\)|parent\b|parents\s*\[\s*\d+\s*\]))+)"
)
UP = re.compile(r"\.\s*parent\b|\.\s*parents\s*\[\s*(\d+)\s*\]")
# a relative path that starts by going up: ../x, ..\x, "../..", or ".." quoted on its own
RELATIVE_UP = re.compile(r"(?<![\w./\\)$}])\.\.[/\\][^\s\"'`)\]>,;]*|(?<=[\"'])\.\.(?=[\"'])")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()


def tracked_texts() -> list[tuple[str, str]]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split("\0")
    texts = []
    for name in filter(None, names):
        try:
            texts.append((name, (ROOT / name).read_text(encoding="utf-8")))
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary (images) or deleted in the work tree
    return texts


def climbs(steps: str) -> int:
    """How many folders up from the file itself a chain of ``.parent`` steps goes.

    Example:
        >>> climbs(".resolve().parents[1]"), climbs(".parent.parent")
        (2, 2)
    """
    return sum(1 if index is None else int(index) + 1 for index in _indices(steps))


def _indices(steps: str) -> list[str | None]:
    return [match.group(1) for match in UP.finditer(steps)]


def escapes(name: str, path: str, *, from_file: bool) -> bool:
    """Whether a relative path written in tracked file ``name`` leads outside the repository,
    read from the file's folder (markdown links) or from the repository root (commands, code).

    Example:
        >>> escapes("docs/a.md", "../README.md", from_file=True)
        False
        >>> escapes("docs/a.md", "../../x", from_file=True), escapes("a.py", "..", from_file=False)
        (True, True)
    """
    depth = 0
    start = PurePosixPath(name).parent.parts if from_file else ()
    for part in [*start, *path.replace("\\", "/").split("/")]:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def test_no_tracked_file_mentions_the_sibling_shared_folder():
    found = [name for name, text in tracked_texts() if SIBLING in text]
    assert found == [], f"{SIBLING} is outside a fresh clone; use data/ instead: {found}"


def test_no_file_path_climbs_out_of_the_repository():
    found = []
    for name, text in tracked_texts():
        for match in CLIMB.finditer(text):
            if climbs(match.group(1)) > len(PurePosixPath(name).parts):
                found.append(f"{name}: {match.group(0)}")
    assert found == [], f"these leave the repository root: {found}"


def test_no_relative_path_leads_out_of_the_repository():
    found = []
    for name, text in tracked_texts():
        if name == THIS:
            continue  # its examples climb on purpose (test_the_checks_catch_what_they_are_for)
        links = {m.group(1) for m in MARKDOWN_LINK.finditer(text)} if name.endswith(".md") else ()
        for link in links:
            if link.startswith("..") and escapes(name, link, from_file=True):
                found.append(f"{name}: link {link}")
        for match in RELATIVE_UP.finditer(text):
            if match.group(0) not in links and escapes(name, match.group(0), from_file=False):
                found.append(f"{name}: {match.group(0)}")
    assert found == [], f"these leave the repository root: {found}"


def test_the_checks_catch_what_they_are_for():
    escape = "Path(__file__).resolve()" + ".parents[2] / 'elsewhere'"
    assert [climbs(m.group(1)) for m in CLIMB.finditer(escape)] == [3]
    assert climbs(".resolve().parent.parent") == 2
    assert [m.group(0) for m in RELATIVE_UP.finditer("ttc eval ../data/x.jsonl")] == [
        "../data/x.jsonl"
    ]
    assert escapes("README.md", "../data/x.jsonl", from_file=False)
    assert not escapes("tests/t.py", "tests/../data", from_file=False)


def test_data_files_are_the_unchanged_copies_the_readme_lists():
    readme = (ROOT / "data" / "README.md").read_text()
    listed = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", readme, re.MULTILINE))
    files = {p.name for p in (ROOT / "data").iterdir() if p.name != "README.md"}
    assert files == set(listed), "every data file has a checksum line in data/README.md"
    for name, digest in listed.items():
        assert hashlib.sha256((ROOT / "data" / name).read_bytes()).hexdigest() == digest, name
