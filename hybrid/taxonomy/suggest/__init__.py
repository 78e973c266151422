"""`hybrid taxonomy suggest`: when the category list should change.

The flow, one module each: `articles` (what is read) → `corpus` (what the model says about
each article, and each category's prototype) → `fit` (the articles the list fits badly) →
`clusters` (their groups) → `join` (the groups of one subject, by their tags) → `terms`
and `describe` (each group as a category a person can judge) → `naming` (optionally, an
LLM's name for it) → `merges` (categories the model confuses) and `dead` (categories
nobody uses) → `proposal` (one taxonomy file holding it all, which changes nothing until a
person accepts it). `run.suggest` does all of it.
"""

from hybrid.taxonomy.suggest.articles import read_articles
from hybrid.taxonomy.suggest.naming import Namer, open_namer
from hybrid.taxonomy.suggest.proposal import Proposal, read_proposal, write_proposal
from hybrid.taxonomy.suggest.run import suggest

__all__ = ["Namer", "Proposal", "open_namer", "read_articles", "read_proposal", "suggest",
           "write_proposal"]
