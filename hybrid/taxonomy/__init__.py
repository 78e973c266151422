"""The authorized category list, and what changes when it changes."""

from hybrid.taxonomy.categories import (
    Category,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
    parse_taxonomy,
)

__all__ = ["Category", "Taxonomy", "TaxonomyError", "load_taxonomy", "parse_taxonomy"]
