"""Strings shaped like something other than a tag: a reader calls `myCart`, `index.js`,
`group_id`, `sql.Date`, `16GB` and `rsyslog.conf` odd (pieces of code, file names,
quantities), while `Node.js`, `ASP.NET`, `iPhone`, `C#` and `TestCafe` are names. The tagger
shows such a string only where the article or the site names it as a subject (its title, its
headings, the site's own tags)."""

from __future__ import annotations

import re
from functools import lru_cache

from hybrid import data
from hybrid.ingest import commonness

_EXTENSIONS = ("conf|config|cfg|ini|json|ya?ml|xml|toml|txt|md|log|sh|bat|ps1|py|pyc|rb|pl|php|"
               "go|rs|c|h|cc|cpp|hpp|cs|java|class|jar|kt|swift|m|ts|tsx|jsx|vue|css|scss|html?|"
               "so|dll|exe|lib|a|o|bin|img|iso|zip|gz|tar|tgz|rar|deb|rpm|apk|dmg|pcz|db|sql|csv|"
               "xlsx?|docx?|pptx?|pdf|png|jpe?g|gif|svg|mp4|mp3|wav|lock|pem|crt|key|plist|mk|"
               "cmake|gradle|sln|csproj|ipynb")
_FILE = re.compile(rf"^[\w.+-]+\.(?:{_EXTENSIONS})$", re.IGNORECASE)
# a name with a dot is a product (Vue.js, ASP.NET, CXL.io) when it is capitalised and ends
# so; else it is a file (index.js) or a member or module path from code (sql.Date,
# window.open, Application.DoEvents)
_PRODUCT = re.compile(r"^(?:[A-Z][\w+-]*)?\.(?i:js|io|net|ai|py|rs|go|app|dev|cloud)$")
_QUANTITY = re.compile(r"^\d+(?:\.\d+)?(?:[kmgtp]i?b|[kmg]?hz|[kmgt]?bps|[mkµu]?s|ns|[kmg]?w|"
                       r"mah|fps|dpi|ppi|nm|mm|cm|km|kg|mb/s|gb/s|[kmg]|p|x|v|c|t)$", re.IGNORECASE)
_UNIT = re.compile(r"^(?:[kmgtp]i?b|[kmgt]?hz|[kmgt]?bps|ms|ns|us|mah|fps|dpi)$", re.IGNORECASE)
# lowerCamel with a word after the first (myCart, yMax, getUserName), not iPhone/eBPF/macOS
_LOWER_CAMEL = re.compile(r"^[a-z]+[A-Z][a-z]+[A-Za-z\d]*$")
_SHORT_LOWER_CAMEL = re.compile(r"^[a-z][A-Z]")  # iPhone, eBPF, iOS: one letter, then a name
_HUMPS = re.compile(r"[a-z\d][A-Z]")  # CounterVec, RemotingServer, FileMRUList
_SLUG = re.compile(r"^[a-z][a-z\d]*(?:-[a-z\d]+)+$")
_TITLE_SLUG = re.compile(r"^[a-z][a-z\d]*(?:-[a-z\d]+){3,}$")  # start-next-term-tomorrow
# a capitalised name, a dot and a short lower-case word is a file (`Common.xcconfig`,
# `Common.debug` of Common.debug.xcconfig), whatever its extension: a member of an object
# is lower-case (`window.close`), a class member capitalised (`Response.Redirect`)
_NAMED_FILE = re.compile(r"^[A-Z][\w+-]*\.[a-z]{2,10}$")
_NOTATION_PARTS = re.compile(r"[._\-]")
_HEX = re.compile(r"^0x[0-9a-f]+$", re.IGNORECASE)
# a short mix of letters and digits is a signal, a part or a register (D2H, V3, 16E, 8P),
# not a subject, unless the article is about it (its title: M1, 5G)
_CODE_NAME = re.compile(r"^(?=.*\d)(?=.*[a-z])[a-z\d]{2,3}$", re.IGNORECASE)
# a letter four times in a row is in no word or name: a user name (`numbbbbb`, the
# translator credited on every post of a site) or a typed sound (`zzzz`, `hahaaaa`)
_STUTTER = re.compile(r"([a-z])\1{3}")  # not `AAAA`, the DNS record


def known_name(key: str) -> bool:
    """Whether the bundled dictionary names `key` (a key: lower case)."""
    return key in _known_names()


@lru_cache(maxsize=1)
def _known_names() -> frozenset[str]:
    """The bundled dictionary's names (`node.js`, `x86`...): names, whatever their shape."""
    lines = data.path("tech_terms.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line.split()[0].casefold() for line in lines
                     if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=100_000)
def odd(surface: str) -> str | None:
    """Why `surface` looks like no tag ("identifier", "file name", "slug", "quantity"), or None.
    A name in the bundled dictionary or a word of the language is a name whatever its
    shape (`Node.js`, `JavaScript`, `PowerShell`). Cached: the tagger asks of ~80
    candidates an article, and the same words recur."""
    if not surface.isascii() or " " in surface:  # a phrase: "GitHub Actions", "Spring Boot"
        return None
    if "_" in surface.strip("_"):
        return "identifier"
    if surface.casefold() in _known_names():  # Node.js, x86, C11
        return None
    if (_FILE.match(surface) or _NAMED_FILE.match(surface)) and not _PRODUCT.match(surface):
        return "file name"
    if "." in surface.strip(".") and not _PRODUCT.match(surface):
        return "identifier"
    if _QUANTITY.match(surface) or _UNIT.match(surface) or _HEX.match(surface):
        return "quantity"
    if _CODE_NAME.match(surface):
        return "code name"
    if _STUTTER.search(surface):
        return "user name"
    if commonness.zipf(surface):  # a word of the language: `JavaScript`, `iPhone`
        return None
    if _LOWER_CAMEL.match(surface) and not _SHORT_LOWER_CAMEL.match(surface):
        return "identifier"
    if surface[:1].isupper() and _HUMPS.search(surface):
        return "identifier"  # UserController, IsNullOrEmpty: no word, no name it knows
    if _TITLE_SLUG.match(surface):
        return "slug"  # a title written as a web address's path, or a flag
    if _SLUG.match(surface):
        return "identifier"  # deploy-app, go-study, max-file: a repository, file or flag
    return None


def notation(token: str) -> bool:
    """Single letters or digits, alone or joined (`C`, `e.g`, `C-a`, `t-3`): notation, no
    word."""
    return max(map(len, _NOTATION_PARTS.split(token))) < 2
