"""From a raw record to clean text: validate the article, strip markup, segment words."""
