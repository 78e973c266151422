"""Imported by the fork server, and by nothing else, when the model's embedder is the
default one (`processes.fork_server`): what every worker needs, ready before the first is
forked.

It imports the code a worker runs (scikit-learn and the rest: ~1.75 CPU-seconds) and
meanwhile loads USE's weights in a thread (~0.45 s, mostly zlib, array copies and
SentencePiece's C++ reader, which release the GIL). Every worker forked afterwards shares
them, instead of reading its own on its first article. The thread ends before this import
does: the fork server must not fork while another thread runs.
"""

from __future__ import annotations

import importlib
import threading

from hybrid.embed.use import load_weights


def _preload() -> None:
    weights = threading.Thread(target=load_weights, name="embedder-weights")
    weights.start()
    try:
        importlib.import_module("hybrid.learn.model")
    finally:
        weights.join()


_preload()
