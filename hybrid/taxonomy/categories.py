"""The authorized category list: loading, validation, fingerprint, label mapping.

An entry may carry a proposal mark (`hybrid taxonomy suggest` writes them): `"proposal":
{"action": "add" | "merge" | "remove", ...evidence}` and `"articles": [ids]`. They are read
past, not kept: the list is what it names. An entry marked for removal is not in the list;
deleting its mark keeps it.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hybrid.errors import UsageError
from hybrid.ingest.keys import hidden_character, label_key

MAX_NAME_CHARS = 100  # a name, alias or keyword
MAX_DESCRIPTION_CHARS = 5000
PROPOSAL_ACTIONS = ("add", "merge", "remove")
_ENTRY_KEYS = {"name", "description", "aliases", "keywords", "parent", "proposal", "articles"}
# letters and symbols that show nothing (Hangul fillers, the blank Braille pattern)
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


class TaxonomyError(UsageError, ValueError):
    pass


def _shown(text: str) -> str:
    """`text` safe to print: escapes for what a terminal would act on, and cut short."""
    return repr(text if len(text) <= 40 else f"{text[:40]}...")


def _text_problem(text: str, limit: int, allowed: str = "") -> str | None:
    if len(text) > limit:
        return f"is longer than {limit} characters"
    hidden = hidden_character(text, allowed)
    if hidden is not None:
        return f"holds the invisible or control character U+{ord(hidden):04X}"
    return None


def _term_problem(term: str) -> str | None:
    """Why a name, alias or keyword cannot be shown and matched as one, or None."""
    problem = _text_problem(term, MAX_NAME_CHARS)
    if problem is None and not any(unicodedata.category(ch)[0] in "LNPS" and ch not in _BLANKS
                                   for ch in term):
        return "shows nothing"
    return problem


def _check_text(cat: Category, where: str) -> None:
    """Names, aliases and keywords are terms a reader sees and matches: printable, visible,
    short. A description may span lines."""
    problem = _term_problem(cat.name)
    if problem:
        raise TaxonomyError(f"{where}: the name {_shown(cat.name)} {problem}")
    where = f"{where} {_shown(cat.name)}"
    for kind, terms in (("alias", cat.aliases), ("keyword", cat.keywords)):
        for term in terms:
            problem = _term_problem(term)
            if problem:
                raise TaxonomyError(f"{where}: {kind} {_shown(term)} {problem}")
    problem = _text_problem(cat.description, MAX_DESCRIPTION_CHARS, allowed="\t\n\r")
    if problem:
        raise TaxonomyError(f"{where}: the description {problem}")


@dataclass(frozen=True)
class Category:
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    parent: str | None = None


@dataclass
class Taxonomy:
    categories: list[Category]
    source: str = "<memory>"
    _lookup: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = f"taxonomy {self.source}"
        if not self.categories:
            raise TaxonomyError(f"{where}: no categories")
        for i, cat in enumerate(self.categories):
            if not cat.name.strip():
                raise TaxonomyError(f"{where}: category #{i + 1} has an empty name")
            _check_text(cat, f"{where}: category #{i + 1}")
            if not isinstance(cat.parent, str | None):
                raise TaxonomyError(f"{where}: category #{i + 1} {_shown(cat.name)}: "
                                    f"'parent' must be the name of a category")
        dupes = [n for n, c in Counter(label_key(c.name) for c in self.categories).items() if c > 1]
        if dupes:
            raise TaxonomyError(f"{where}: duplicate category name(s): {', '.join(dupes)}")
        self._lookup = {label_key(c.name): c.name for c in self.categories}
        for cat in self.categories:
            for alias in cat.aliases:
                owner = self._lookup.setdefault(label_key(alias), cat.name)
                if owner != cat.name:
                    raise TaxonomyError(
                        f"{where}: alias {alias!r} of {cat.name!r} is already {owner!r}")
        names = {c.name for c in self.categories}
        for cat in self.categories:
            if cat.parent is not None and cat.parent not in names:
                raise TaxonomyError(f"{where}: parent {cat.parent!r} of {cat.name!r} is unknown")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    def __len__(self) -> int:
        return len(self.categories)

    def __getitem__(self, name: str) -> Category:
        return self.categories[self.names.index(name)]

    @property
    def fingerprint(self) -> str:
        """Identifies the set of names a model may output; order and descriptions don't count."""
        blob = json.dumps(sorted(self.names), ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]

    def resolve(self, label: str) -> str | None:
        """Canonical name for a name or alias (case/width-insensitive), else None."""
        return self._lookup.get(label_key(label))

    def map_labels(self, labels: list[str]) -> tuple[list[str], list[str]]:
        """Return (authorized names, unknown labels); unknown ones must never be learned."""
        kept: list[str] = []
        dropped: list[str] = []
        for label in labels:
            name = self.resolve(label)
            if name is None:
                dropped.append(label)
            elif name not in kept:
                kept.append(name)
        return kept, dropped

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(c).items() if v}
            for c in self.categories
        ]


def _category(item: Any, where: str) -> Category:
    if isinstance(item, str):
        return Category(name=item.strip())
    if not isinstance(item, dict):
        raise TaxonomyError(f"{where}: expected a name or an object, got {type(item).__name__}")
    if "name" not in item or not isinstance(item["name"], str):
        raise TaxonomyError(f"{where}: missing or non-text 'name'")
    unknown = set(item) - _ENTRY_KEYS
    if unknown:
        raise TaxonomyError(f"{where}: unknown key(s) {sorted(unknown)}")
    proposal_action(item, where)
    articles = item.get("articles", [])
    if not isinstance(articles, list) or not all(isinstance(v, str) for v in articles):
        raise TaxonomyError(f"{where}: 'articles' must be a list of article ids (strings)")
    for key in ("aliases", "keywords"):
        value = item.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TaxonomyError(f"{where}: {key!r} must be a list of strings")
    return Category(
        name=item["name"].strip(),
        description=str(item.get("description") or ""),
        aliases=tuple(item.get("aliases", [])),
        keywords=tuple(item.get("keywords", [])),
        parent=item.get("parent"),
    )


def proposal_action(item: Any, where: str = "taxonomy entry") -> str | None:
    """The action an entry's proposal mark proposes, or None for an unmarked entry."""
    if not isinstance(item, dict) or "proposal" not in item:
        return None
    mark = item["proposal"]
    if not isinstance(mark, dict) or mark.get("action") not in PROPOSAL_ACTIONS:
        raise TaxonomyError(f"{where}: 'proposal' must be an object whose 'action' is one of "
                            f"{', '.join(PROPOSAL_ACTIONS)}")
    return mark["action"]


def parse_taxonomy(data: Any, source: str = "<memory>") -> Taxonomy:
    """Accept a list of names, a list of objects, {name: description}, or {"categories": [...]}."""
    if isinstance(data, dict) and "categories" in data:
        data = data["categories"]
    if isinstance(data, dict):
        if not all(isinstance(v, str | None) for v in data.values()):
            raise TaxonomyError(f"taxonomy {source}: a {{name: description}} object needs text")
        data = [{"name": k, "description": v or ""} for k, v in data.items()]
    if not isinstance(data, list):
        raise TaxonomyError(f"taxonomy {source}: expected a list or an object")
    cats = [_category(item, f"taxonomy {source}, entry #{i + 1}") for i, item in enumerate(data)]
    kept = [cat for cat, item in zip(cats, data, strict=True)
            if proposal_action(item) != "remove"]
    return Taxonomy(kept, source=source)


def load_taxonomy(path: str | Path) -> Taxonomy:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaxonomyError(f"taxonomy {path}: not valid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise TaxonomyError(f"taxonomy {path}: not UTF-8 text ({exc})") from exc
    except RecursionError:
        raise TaxonomyError(f"taxonomy {path}: nested too deeply to be a category list"
                            ) from None
    return parse_taxonomy(data, source=str(path))
