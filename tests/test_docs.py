"""The READMEs and docs/ hold together: every relative link leads to a file that exists and,
with a `#fragment`, to a heading in it."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "README.zh-CN.md"]
PAGES = [path for path in READMES if path.exists()] + sorted((ROOT / "docs").glob("*.md"))

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_CODE = re.compile(r"(`+).*?\1", re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """The text without code (fenced blocks, inline code), where no link or heading lives."""
    return _CODE.sub("", _FENCE.sub("", text))


def shell_blocks(path: Path) -> list[str]:
    """The fenced shell blocks of a page, in order."""
    return re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", path.read_text(encoding="utf-8"),
                      re.M | re.S)


def links(path: Path) -> list[str]:
    return _LINK.findall(prose(path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """The fragments GitHub gives the headings of a Markdown file: lower case, punctuation
    dropped (letters of any script, digits, `_` and `-` kept), spaces as `-`, a repeat
    numbered."""
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
        slug = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
        slug = slug.replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...
            continue
        file, _, fragment = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.name}")
    return broken


def test_the_anchor_rule_matches_githubs():
    assert anchors(ROOT / "docs" / "day-one.md") >= {
        "1-describe-the-categories", "3-pay-once-for-a-few-good-labels-hybrid-bootstrap"}


def test_a_broken_link_is_found(tmp_path: Path):
    (tmp_path / "a.md").write_text("# A `b` 中文: c\n\n## Go\n\n```sh\n# not a heading\n```\n",
                                   encoding="utf-8")
    (tmp_path / "b.md").write_text(
        "[ok](a.md#a-b-中文-c) [ok](a.md#go) [here](#x) [gone](c.md) [no](a.md#not-a-heading)"
        " `[code](c.md)` [web](https://example.org/x)\n\n## X\n", encoding="utf-8")
    assert broken_links(tmp_path / "b.md") == [
        "c.md: no such file", "a.md#not-a-heading: no heading #not-a-heading in a.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    assert broken_links(page) == [], page.name


def phrases(path: Path, n: int = 12) -> set[str]:
    """Every run of `n` words of a page's prose (code and tables' rules aside)."""
    words = prose(path.read_text(encoding="utf-8")).split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_the_readme_and_the_docs_say_nothing_twice(page: Path):
    """The README is the user's guide and links to the rest: a passage in both would drift."""
    assert phrases(ROOT / "README.md") & phrases(page) == set()


def test_ci_runs_the_readmes_test_command():
    setup = shell_blocks(ROOT / "README.md")[0]
    assert "make test" in setup
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def commands(page: Path) -> list[str]:
    """The command lines of a page's shell and cron blocks, comments aside (they are in the
    page's language), continuation lines joined."""
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"^```(?:bash|sh|shell|cron)\n(.*?)^```", text, re.M | re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [" ".join(re.sub(r"(^|\s)#.*$", "", line).split()) for line in lines
            if re.sub(r"(^|\s)#.*$", "", line).strip()]


def test_both_readmes_show_the_same_commands_and_links():
    english, chinese = READMES
    assert chinese.exists(), "README.zh-CN.md: the Chinese user guide"
    assert commands(english) == commands(chinese)
    assert "README.zh-CN.md" in links(english) and "README.md" in links(chinese)
    others = [sorted(t for t in links(page) if not t.startswith("README")) for page in READMES]
    assert others[0] == others[1]
