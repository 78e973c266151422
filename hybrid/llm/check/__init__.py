"""Is this LLM worth its answers? Measured before it is trusted (`hybrid llm check`).

`measure` turns the LLM's answers for the articles the fallback would send (the least
confident, out of fold) into accuracies and a routing table with intervals, and a
recommendation; `job` gets those answers through the real LLM path; `record` keeps the
result in the model directory, verified with it; `gate` is what `run`, `tag-file` and
`serve` ask before they use the LLM as a fallback. See docs/llm.md.
"""
