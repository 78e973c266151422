"""Which field names a collection's settings may use, checked before any query is built.

A name may be a dotted path into sub-documents (`body.html`, `meta.categories`), as MongoDB
reads it. It may not be what MongoDB would read as something else: a segment starting with
`$` is an operator (`$where` in a write guard runs as one); an empty segment is no field.
`hybrid` is ours, so no setting names it or a field inside it. The categories and tags
fields are written: neither may be `_id`, hold the other, or hold or lie in a text field
(writing labels would change the text they were computed from, and the next run would tag
it again).
"""

from __future__ import annotations

from hybrid.config import Config
from hybrid.errors import UsageError

STATE = "hybrid"  # our sub-document in each article
TEXT = ("title_field", "description_field", "content_field")
WRITTEN = ("categories_field", "tags_field")


def _problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "a field name must be non-empty text"
    parts = name.split(".")
    if any(not part for part in parts):
        return "a dotted path has an empty part"
    if any(part.startswith("$") for part in parts):
        return "a name starting with '$' is a MongoDB operator, not a field"
    if "\0" in name:
        return "a field name cannot hold a NUL character"
    if parts[0] == STATE:
        return f"'{STATE}' is where hybrid records how labels were made; name another field"
    return None


def _within(a: str, b: str) -> bool:
    """`a` is `b` or one of them lies inside the other (`body` and `body.html`)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def check_field_names(config: Config) -> None:
    """Raise `UsageError` (exit 2) naming the setting whose field name cannot work."""
    names = {setting: getattr(config, setting) for setting in (*TEXT, *WRITTEN)}
    for setting, name in names.items():
        problem = _problem(name)
        if problem:
            raise UsageError(f"{setting} {name!r}: {problem}")
    for setting in WRITTEN:
        name = names[setting]
        if _within(name, "_id"):
            raise UsageError(f"{setting} {name!r}: labels cannot be written to the _id")
        for other in (*TEXT, *WRITTEN):
            if other != setting and _within(name, names[other]):
                raise UsageError(
                    f"{setting} {name!r} and {other} {names[other]!r} overlap: labels are "
                    "written there, so each needs a field of its own, outside the text fields")
