"""Where labels come from: people (the review loop) and the collection's manual labels."""
