"""`hybrid serve`: suggestions over HTTP while an author writes, and a page for people.

One front process runs the ASGI app (FastAPI under uvicorn): HTTP, limits, the queue that
batches articles across requests, the LLM fallback under a deadline, feedback, metrics and
reloads. `--workers` model processes each load the verified model once and predict the
batches they are handed, with the same code as `tag-file` (`batch.predictor`). A reload
verifies a pinned copy of the new model, then replaces the workers one at a time while the
others serve (`pool`), so no request waits on a loading model and a refused model never
replaces the one that serves.

Modules: `app` (the application and its routes), `service` (what the routes call),
`workers` (the model processes), `pool` (which of them serve), `batching` (requests →
batches), `generation` (one verified model), `llm` (the fallback's deadline), `feedback`
(people's labels and the review queue, done by a worker), `limits` (body size and time),
`problems` (JSON errors), `metrics`, `schemas` (for /docs), `explain` (why each tag),
`server` (uvicorn, signals).
"""
