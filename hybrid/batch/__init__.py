"""Many articles at once: the predictor pool, a JSONL file, the nightly MongoDB job."""
