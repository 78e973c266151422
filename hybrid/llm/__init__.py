"""Optional LLM second opinion for the articles the classifier is unsure about.

Locked to the authorized list (strict JSON schema with an enum, then local validation),
budgeted per run, cached, and never able to fail a batch. See docs/llm.md.
"""
