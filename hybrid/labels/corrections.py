"""A person's labels for one article, checked and stored the same way on every path that
takes them (`review import`, `hybrid serve`'s feedback): categories of the taxonomy, at most
`max_categories`; tags cleaned as on every tag path; stored as manual labels on the one
article the id names (in MongoDB), or as a line of a label ledger under its lock.

An id is a key (`hybrid.ingest.ids`). A typed one (an `_id` column, a request's `_id`) names
the article with that `_id`; a bare text (an `id` column from before ids carried their
type, a CMS's own id) names any article whose `_id` it may stand for, and is an error if
that is more than one: never the wrong article.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from bson.regex import Regex

from hybrid.ingest.ids import id_key, id_value, shown
from hybrid.ingest.keys import MAX_TAG_CHARS, plain_tags
from hybrid.labels.ledger import FileLedger, Label
from hybrid.mongo.store import Store
from hybrid.taxonomy import Taxonomy

LEDGER_WAIT = 10.0  # seconds `review import` waits for another writer of a ledger


@dataclass
class Correction:
    id: str  # the article's key; from an `_id` column, `id_key` of the `_id`
    categories: list[str]
    tags: list[str] | None  # None: keep the article's tags
    typed: bool = False  # from an `_id` (else bare text: an `id` column, a CMS's own id)


class Refused(ValueError):
    """What is wrong with a person's labels, and the field it is in."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r}: {reason}")
        self.field = field


def correction(article_id: str, categories: Sequence[str], raw_tags: Sequence[str],
               taxonomy: Taxonomy, max_categories: int, typed: bool = False) -> Correction:
    """A person's labels for one article, checked as every path that stores them checks
    them (`review import`, `hybrid serve`'s feedback): categories of the taxonomy (names
    or aliases), at most `max_categories`; tags cleaned as on every tag path (`plain_tags`).
    `Refused` names the field at fault. No tags: keep the article's."""
    names, unknown = taxonomy.map_labels(list(categories))
    if unknown:
        raise Refused("categories", f"not in the taxonomy: {', '.join(unknown)} (known: "
                                    f"{', '.join(taxonomy.names)})")
    if len(names) > max_categories:
        raise Refused("categories", f"{len(names)} categories ({', '.join(names)}), at most "
                                    f"{max_categories} (the max_categories setting)")
    tags, refused = plain_tags(raw_tags)
    if refused:
        raise Refused("tags", f"{refused[0][:80]!r} is no tag a site can show (a tag is plain "
                              f"text of at most {MAX_TAG_CHARS} characters: no markup, link, "
                              "control character or formula)")
    return Correction(article_id, names, tags or None, typed)


def _id_candidates(raw: str) -> list[Any]:
    """The ids a bare text may stand for: itself, the id it is the key of (`1`, `{"$oid":
    "…"}`), and the ObjectId or number a CSV cell shows without its type."""
    out: list[Any] = [raw, id_value(raw)]
    if ObjectId.is_valid(raw):
        out.append(ObjectId(raw))
    if re.fullmatch(r"-?\d+", raw):
        out.append(int(raw))
    return [v for i, v in enumerate(out) if _is_id(v) and v not in out[:i]]


def _is_id(value: Any) -> bool:
    """What a query may look for as an `_id`: no array or pattern (either would match other
    articles), no sub-document with `$` names (an operator to a query)."""
    if isinstance(value, dict):
        return not any(str(name).startswith("$") for name in value)
    return not isinstance(value, list | Regex | re.Pattern)


class Ambiguous(LookupError):
    """An id that names more than one article: none of them is labelled."""

    def __init__(self, key: str, found: Sequence[Any]) -> None:
        super().__init__(f"id {shown(key)} names {len(found)} articles ("
                         f"{', '.join(shown(id_key(f)) for f in found)})")


def store_correction(store: Store, fix: Correction) -> Any:
    """Write `fix` as manual labels on the one article its id names, and return that
    article's `_id`. A typed id names the article with that `_id`; a bare text (an `id`
    column, a CMS's own id) any article whose `_id` it may stand for, and `Ambiguous` if
    that is more than one. `Refused` (field "_id") for no `_id` at all; `LookupError` if no
    article has it."""
    if fix.typed:
        value = id_value(fix.id)
        if not _is_id(value):
            raise Refused("_id", f"{shown(fix.id)} is a {type(value).__name__}, not an _id")
        candidates = [value]
    else:
        candidates = _id_candidates(fix.id)
    found = store.find_ids(candidates)
    if not found:
        raise LookupError(f"no article with _id {shown(fix.id)} in {store.where}")
    if len(found) > 1:
        raise Ambiguous(fix.id, found)
    store.set_manual(found[0], fix.categories, fix.tags)
    return found[0]


def write_to_store(store: Store, corrections: Sequence[Correction]) -> dict[str, str]:
    """Write each correction as manual labels, on the one article its id names; returns
    errors by article id."""
    errors = {}
    for fix in corrections:
        try:
            store_correction(store, fix)
        except Ambiguous as exc:
            errors[fix.id] = str(exc) if fix.typed else (
                f"{exc}: this review file is from before ids carried their type; export it "
                "again")
        except (Refused, LookupError) as exc:
            errors[fix.id] = str(exc)
    return errors


def write_to_ledger(ledger: FileLedger, corrections: Sequence[Correction],
                    wait: float = LEDGER_WAIT) -> None:
    """Add each correction to a label ledger as a person's label, holding the ledger's lock
    as every writer does (`wait` seconds for another writer; `LeaseHeld` after that, as
    while a bootstrap labels with the ledger)."""
    with ledger.lock(wait=wait):
        for fix in corrections:
            ledger.add(Label(fix.id, fix.categories, fix.tags or [], "manual"))
