"""Which field names a collection's settings may use, checked before any query is built.

A name may be a dotted path into sub-documents (`body.html`, `meta.categories`), as MongoDB
reads it. It may not be what MongoDB would read as something else: a segment starting with
`$` is an operator (`$where` in a write guard runs as one); an empty segment is no field.
`hybrid` is ours, so no setting names it or a field inside it. The categories and tags
fields are written: neither may be `_id`, hold the other, or hold or lie in a text field
(writing labels would change the text they were computed from, and the next run would tag
it again).

The rules for one name are part of the settings' type (`hybrid.config.FieldName`), so a bad
name is refused where settings are validated, naming the file, variable or flag; the rules
between names are checked when a store opens (`check_field_names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hybrid.errors import UsageError

STATE = "hybrid"  # our sub-document in each article
TEXT = ("title_field", "description_field", "content_field")
WRITTEN = ("categories_field", "tags_field")


def check_field_name(name: str) -> str:
    """`name`, if MongoDB reads it as the field it names (a `ValueError` saying why not).
    Empty names and control characters are refused by the settings' `Text` type."""
    parts = name.split(".")
    if any(not part for part in parts):
        raise ValueError("a dotted path has an empty part")
    if any(part.startswith("$") for part in parts):
        raise ValueError("a name starting with '$' is a MongoDB operator, not a field")
    if parts[0] == STATE:
        raise ValueError(f"'{STATE}' is where hybrid records how labels were made; name "
                         "another field")
    return name


def _within(a: str, b: str) -> bool:
    """`a` is `b` or one of them lies inside the other (`body` and `body.html`)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def check_field_names(settings: Mapping[str, Any]) -> None:
    """Raise `UsageError` (exit 2) naming the setting whose field cannot be written.
    `settings`: the settings by name, `vars(config)` (not a `Config`: `hybrid.config` imports
    this module); each name on its own was checked with the settings."""
    names = {setting: settings[setting] for setting in (*TEXT, *WRITTEN)}
    for setting in WRITTEN:
        name = names[setting]
        if _within(name, "_id"):
            raise UsageError(f"{setting} {name!r}: labels cannot be written to the _id")
        for other in (*TEXT, *WRITTEN):
            if other != setting and _within(name, names[other]):
                raise UsageError(
                    f"{setting} {name!r} and {other} {names[other]!r} overlap: labels are "
                    "written there, so each needs a field of its own, outside the text fields")
