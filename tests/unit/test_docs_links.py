"""Every relative link in README.md and docs/*.md resolves inside a clone of the repository.

A reader who follows a link from the README must land on a file of this repository, and on
the heading the link names: no link may point outside the repository (the product ships
without anything beside it), and none may name a file or a heading that does not exist.
Anchors are checked against GitHub's heading slugs. The checker is tested on a small tree of
its own first, so a broken link is known to fail.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# Pages a link may name before they exist (none: every page is written).
PENDING: frozenset[str] = frozenset()
# Text that names a place outside the repository, in a link or not.
OUTSIDE_NAMES = ("../shared", "/work/shared")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title"); the text may hold one level of brackets, as in `[a [b] c](x)`.
INLINE_LINK = re.compile(
    r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced and indented code blocks."""
    lines: list[str] = []
    fence: str | None = None
    previous_blank = True
    in_indented = False
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        indented = line.startswith(("    ", "\t")) and bool(line.strip())
        in_indented = indented and (previous_blank or in_indented)
        if not in_indented:
            lines.append(line)
        previous_blank = not line.strip()
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped."""
    text = INLINE_CODE.sub(lambda match: match.group(2), heading)
    text = INLINE_LINK.sub(lambda match: match.group(1), text)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a page; repeated headings get -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    for line in prose_lines(text):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def link_targets(text: str) -> list[str]:
    """Inline and reference-style link targets of a page, code left out."""
    targets: list[str] = []
    for line in prose_lines(text):
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
            continue
        without_code = INLINE_CODE.sub("", line)
        targets.extend(match.group(2) for match in INLINE_LINK.finditer(without_code))
    return targets


def link_problems(page: Path, root: Path, pending: frozenset[str] = frozenset()) -> list[str]:
    """Why each relative link of `page` does not resolve inside `root` (empty: all do)."""
    root = root.resolve()
    text = page.read_text(encoding="utf-8")
    where = page.resolve().relative_to(root).as_posix()
    problems = [f"{where}: names {name!r}, outside the repository"
                for name in OUTSIDE_NAMES if name in text]
    for target in link_targets(text):
        if not target:
            problems.append(f"{where}: empty link")
            continue
        if SCHEME.match(target):
            continue  # a web address: not a file of the clone
        path_part, _, fragment = target.partition("#")
        if path_part.startswith("/"):
            problems.append(f"{where}: {target!r} is absolute; use a path relative to the page")
            continue
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        if not resolved.is_relative_to(root):
            problems.append(f"{where}: {target!r} points outside the repository")
            continue
        relative = resolved.relative_to(root).as_posix()
        if not resolved.exists():
            if relative not in pending:
                problems.append(f"{where}: {target!r}: no such file {relative}")
            continue
        if fragment and resolved.is_file() and resolved.suffix == ".md":
            if fragment not in anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{where}: {target!r}: no heading #{fragment} in {relative}")
    return problems


# The checker itself, on a tree of its own.

def _tree(tmp_path: Path, readme: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# A page\n\n## The `[api]` table\n\n## Limits\n\n## Limits\n\n"
        "```sh\n# not a heading\n```\n")
    (tmp_path / "README.md").write_text(readme)
    return tmp_path / "README.md"


@pytest.mark.parametrize("link", [
    "docs/page.md", "docs/page.md#the-api-table", "docs/page.md#limits-1", "#top",
    "docs/", "https://example.org/x", "./docs/page.md#a-page",
])
def test_checker_accepts_links_that_resolve(tmp_path: Path, link: str) -> None:
    readme = _tree(tmp_path, f"# Top\n\nSee [there]({link}).\n")
    assert link_problems(readme, tmp_path) == []


@pytest.mark.parametrize(("link", "reason"), [
    ("docs/missing.md", "no such file docs/missing.md"),
    ("docs/page.md#no-such-heading", "no heading #no-such-heading"),
    ("docs/page.md#not-a-heading", "no heading #not-a-heading"),
    ("#nowhere", "no heading #nowhere"),
    ("../shared/MISSION.md", "outside the repository"),
    ("docs/../../elsewhere.md", "points outside the repository"),
    ("/etc/passwd", "is absolute"),
    ("", "empty link"),
])
def test_checker_refuses_broken_links(tmp_path: Path, link: str, reason: str) -> None:
    readme = _tree(tmp_path, f"# Top\n\nSee [there]({link}).\n")
    problems = link_problems(readme, tmp_path)
    assert problems and any(reason in problem for problem in problems), problems


def test_checker_reads_reference_links_and_skips_code(tmp_path: Path) -> None:
    readme = _tree(tmp_path, "# Top\n\n[ref]: docs/gone.md\n\n`[x](docs/code.md)`\n\n"
                             "    [y](docs/indented.md)\n\n```\n[z](docs/fenced.md)\n```\n")
    assert link_problems(readme, tmp_path) == [
        "README.md: 'docs/gone.md': no such file docs/gone.md"]


def test_checker_accepts_a_pending_page_only_while_it_is_missing(tmp_path: Path) -> None:
    readme = _tree(tmp_path, "# Top\n\n[later](docs/later.md#part)\n")
    assert link_problems(readme, tmp_path, frozenset({"docs/later.md"})) == []
    (tmp_path / "docs" / "later.md").write_text("# Later\n")
    assert link_problems(readme, tmp_path, frozenset({"docs/later.md"})) == [
        "README.md: 'docs/later.md#part': no heading #part in docs/later.md"]


@pytest.mark.parametrize(("heading", "expected"), [
    ("The demo: `reserve demo`", "the-demo-reserve-demo"),
    ("Behind the transfer workflow: `BitcoinAdapter`",
     "behind-the-transfer-workflow-bitcoinadapter"),
    ("Extending it (for the workflow, holdings and reconciliation parts)",
     "extending-it-for-the-workflow-holdings-and-reconciliation-parts"),
    ("EVM reserve assets: Safe vaults, the on-chain guard",
     "evm-reserve-assets-safe-vaults-the-on-chain-guard"),
    ("The chain seam (`reserve/transfers/chain.py`)", "the-chain-seam-reservetransferschainpy"),
])
def test_slug_matches_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


# The repository's own pages.

@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_link_resolves_inside_the_repository(page: Path) -> None:
    problems = link_problems(page, ROOT, PENDING)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_page_is_in_the_index() -> None:
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / target.partition("#")[0]).resolve()
              for target in link_targets(index.read_text(encoding="utf-8"))}
    missing = [page.name for page in PAGES[1:] if page != index and page.resolve() not in linked]
    assert missing == []


def test_readme_links_the_docs_index() -> None:
    assert "docs/README.md" in link_targets((ROOT / "README.md").read_text(encoding="utf-8"))
