"""The documentation holds together: citations resolve, links lead somewhere, the README stays a manual.

* every ``§N`` in the repository cites a numbered heading of ``docs/reference.md`` that exists (the
  original implementation's facts live there, so a user who clones the project can follow each one),
  and nothing cites the unshipped document the facts were first collected in;
* every relative link in the Markdown docs points to an existing file, and an ``#anchor`` on it to a
  heading of that file;
* README.md is at most 15 KB: details belong in ``docs/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import ROOT

REFERENCE = ROOT / "docs" / "reference.md"
README_LIMIT = 15 * 1024
SKIPPED_DIRS = {".git", ".venv", ".snakemake", ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__",
                "results", "logs", "benchmarks", "build"}  # fmt: skip
TEXT_SUFFIXES = (".py", ".md", ".rst", ".yaml", ".yml", ".smk", "Snakefile")
SECTION = r"\d+(?:\.\d+)*"
CITATION = re.compile(rf"§({SECTION})(?:\s*[–-]\s*§?({SECTION}))?")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
UNSHIPPED = "REFERENCE" + " §"  # split so that this file does not cite it itself


def text_files() -> list[Path]:
    """The repository's own text files, virtual environments and outputs left out."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        found += [Path(folder) / f for f in files if f.endswith(TEXT_SUFFIXES)]
    return sorted(found)


def numbered_sections(markdown: str) -> set[str]:
    """Section numbers of the headings (``### 5.3 Defects`` -> ``5.3``; ``## 4. Search`` -> ``4``)."""
    numbers = set()
    for title in HEADING.findall(markdown):
        match = re.match(rf"({SECTION})\.?(\s|$)", title)
        if match:
            numbers.add(match.group(1))
    return numbers


def cited_sections(text: str) -> set[str]:
    """Every section number a text cites, both ends of a range included (``§1.2–1.4``)."""
    return {number for match in CITATION.finditer(text) for number in match.groups() if number}


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def broken_links(path: Path) -> list[str]:
    """Relative links of a Markdown file whose file, or whose ``#anchor`` in it, does not exist."""
    broken = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
            broken.append(target)
    return broken


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings."""
    return {slug(title) for title in HEADING.findall(path.read_text())}


def test_every_section_citation_resolves_to_a_heading_of_docs_reference():
    sections = numbered_sections(REFERENCE.read_text())
    unresolved = {
        f"{path.relative_to(ROOT)}: §{number}"
        for path in text_files()
        for number in cited_sections(path.read_text())
        if number not in sections
    }
    assert not unresolved, sorted(unresolved)
    # the sections code and configs cite most; guards the numbering itself
    assert {"1.1", "2.6", "3.1", "4.1.3", "4.4", "5.3.1", "5.3.5", "7.3", "8", "10"} <= sections


def test_nothing_cites_the_unshipped_reference():
    offenders = [str(p.relative_to(ROOT)) for p in text_files() if UNSHIPPED in p.read_text()]
    assert not offenders


def test_relative_links_in_the_markdown_docs_point_to_existing_files():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pages += [ROOT / d / "README.md" for d in ("bench", "tests", "config") if (ROOT / d / "README.md").exists()]
    broken = {str(page.relative_to(ROOT)): broken_links(page) for page in pages}
    assert not {page: links for page, links in broken.items() if links}


def test_readme_is_a_manual_of_at_most_15_kb():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move details to docs/"


def test_the_checks_catch_planted_violations(tmp_path):
    reference = "# Title\n\n## 4. Search\n\n### 4.1 Scoring\n\n#### 4.1.3 Schedule\n"
    assert numbered_sections(reference) == {"4", "4.1", "4.1.3"}
    assert cited_sections("see docs/reference.md §4.1.3 and §1.2–1.4, §7") == {"4.1.3", "1.2", "1.4", "7"}
    assert cited_sections("docs/reference.md §3-§8") == {"3", "8"}
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## Search results: tables, baselines and repeats\n")
    page.write_text(
        "[ok](other.md#search-results-tables-baselines-and-repeats) [web](https://example.org/x.md) "
        "[gone](missing.md) [bad anchor](other.md#nowhere) [self](#page)\n# Page\n"
    )
    assert broken_links(page) == ["missing.md", "other.md#nowhere"]


@pytest.mark.parametrize(
    ("title", "anchor"),
    [("Your own data: the `tabular` format", "your-own-data-the-tabular-format"), ("5.3 Defects", "53-defects")],
)
def test_slug_matches_github(title, anchor):
    assert slug(title) == anchor
