"""The docs' cross-references: every section the code, configs, scripts and docs cite by title or anchor exists.

Measurements live in docs/results.md (today's) and docs/experiments.md (each pass's record); the code cites them
as ``docs/experiments.md, "Section title"``. Moving a section between pages must not leave a citation behind.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("results", "experiments", "history", "cli", "design", "training", "original_checkpoints", "python")

#: ``results.md, "Title"``, ``results.md ("Title")`` and ``results.md](results.md), "Title"``: the page, then
#: within a few characters a double-quoted title (which may run over a line break and a comment marker).
CITATION = re.compile(r"\b(" + "|".join(PAGES) + r")\.md\)?\]?(?:\([^)]*\))?,?\s*\(?\"([^\"]{3,200})\"")
ANCHOR = re.compile(r"\b(" + "|".join(PAGES) + r")\.md#([a-z0-9-]+)")


@functools.cache
def _files() -> tuple[Path, ...]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        names = listed.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): read what is there
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    keep = (".py", ".md", ".toml", ".sh")
    here = Path(__file__).resolve()  # its own examples of citations are not citations
    return tuple(ROOT / n for n in names
                 if n.endswith(keep) and (ROOT / n).is_file() and "/results/" not in n and (ROOT / n).resolve() != here)


def _norm(text: str) -> str:
    text = re.sub(r"\n\s*(#:?|\*)?\s*", " ", text)  # a title wrapped over comment or prose lines
    return re.sub(r"\s+", " ", text).strip()


@functools.cache
def _headings(page: str) -> tuple[str, ...]:
    return tuple(_norm(h) for h in re.findall(r"^#+ (.+)$", (DOCS / f"{page}.md").read_text(), flags=re.M))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@functools.cache
def _citations() -> tuple[tuple[str, str, str], ...]:
    found = []
    for path in _files():
        text = path.read_text(errors="replace")
        for m in CITATION.finditer(text):
            found.append((str(path.relative_to(ROOT)), m.group(1), _norm(m.group(2))))
    return tuple(found)


def test_citations_are_found() -> None:
    """The scan sees the citations it guards (a regex that matched nothing would pass every check)."""
    cited = {(page, title) for _, page, title in _citations()}
    assert ("experiments", "Changed: a pixel shuffle that moves sub-pixel rows whole") in cited
    assert ("results", "bfloat16 on this CPU") in cited


@pytest.mark.parametrize("page", PAGES)
def test_cited_sections_exist(page: str) -> None:
    heads = _headings(page)
    missing = [(where, title) for where, p, title in _citations() if p == page
               and not any(h.startswith(title) for h in heads)]
    assert not missing, f"sections of docs/{page}.md cited but not there: {missing}"


def test_anchors_exist() -> None:
    missing = []
    for path in _files():
        for m in ANCHOR.finditer(path.read_text(errors="replace")):
            if m.group(2) not in {_slug(h) for h in _headings(m.group(1))}:
                missing.append((str(path.relative_to(ROOT)), m.group(0)))
    assert not missing, f"anchors into the docs that no heading makes: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_links_within_a_page_reach_its_headings(page: str) -> None:
    """A page's own ``](#anchor)`` links (cli.md's contents) reach one of its headings."""
    text = (DOCS / f"{page}.md").read_text()
    links = re.findall(r"\]\(#([a-z0-9-]+)\)", text)
    missing = [a for a in links if a not in {_slug(h) for h in _headings(page)}]
    assert not missing, f"links within docs/{page}.md that no heading makes: {missing}"


@pytest.mark.parametrize("page", [f"docs/{p}.md" for p in PAGES] + ["README.md", "weights/README.md", "CHANGELOG.md"])
def test_links_to_files_reach_them(page: str) -> None:
    """A page's links to files of the checkout (``](../weights/README.md)``) are relative to the page, as GitHub
    reads them: pages moved into docs/ had kept their links from the top folder."""
    where = ROOT / page
    links = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", where.read_text())
    missing = [t for t in links if not re.match(r"[a-z]+:", t) and not (where.parent / t).exists()]
    assert not missing, f"links in {page} to files that are not there: {missing}"
