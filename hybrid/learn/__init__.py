"""Features → the category classifier and the tagger → one saved, verified model."""
