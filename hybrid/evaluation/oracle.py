"""An OpenAI-compatible server on 127.0.0.1 that answers from held labels: what a perfect LLM
(or one wrong with probability `noise`) would do, measured through the real LLM path.

It finds the article a request is about by the text between `<article>` and `</article>`,
which `hybrid.llm.prompt` writes from the article's clean text; it answers with the held
categories and tags as JSON, and reports token usage as `estimate_tokens` counts it. A noisy
answer swaps the first category for another authorized one, the same one every time for
the same article, as a real LLM's mistakes are not random from call to call.

It answers from the list the request offers (the `enum` of its response schema), as a careful
LLM would: the held categories on that list, or none when the list leaves them all out (the
teacher check's controls ask so). A noisy answer's wrong category is one on the list; the
same list in another order gets the same answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hybrid.ingest.article import Article
from hybrid.ingest.clean import clean
from hybrid.llm.prompt import article_text, estimate_tokens
from hybrid.taxonomy import Taxonomy

_ARTICLE = re.compile(r"<article>\n(.*)\n</article>", re.DOTALL)


class Oracle:
    """The labels to answer with, by article text; counts what it was asked."""

    def __init__(self, articles: Sequence[Article], taxonomy: Taxonomy, article_tokens: int,
                 noise: float = 0.0, seed: int = 0) -> None:
        self.taxonomy = taxonomy
        self.noise = noise
        self.seed = seed
        self.labels = {article_text(clean(a), article_tokens): a for a in articles}
        self.calls = 0
        self.unknown = 0
        self._lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["messages"][-1]["content"]
        found = _ARTICLE.search(prompt)
        article = self.labels.get(found.group(1)) if found else None
        with self._lock:
            self.calls += 1
            self.unknown += article is None
        if article is None:
            content = {"categories": [], "tags": []}
        else:
            content = {"categories": self._categories(article, _offered(body)),
                       "tags": article.tags[:5]}
        text = json.dumps(content, ensure_ascii=False)
        return {"choices": [{"message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": sum(estimate_tokens(m["content"])
                                               for m in body["messages"]),
                          "completion_tokens": estimate_tokens(text)}}

    def _categories(self, article: Article, offered: list[str] | None = None) -> list[str]:
        """The held categories on the `offered` list (None: the whole taxonomy), or with
        probability `noise` a wrong one from the list first."""
        held = self.taxonomy.map_labels(article.categories)[0]
        offered = [n for n in self.taxonomy.names if offered is None or n in offered]
        gold = [n for n in held if n in offered]
        digest = hashlib.sha256(f"{self.seed}:{article.id}".encode("utf-8", "surrogatepass"))
        draw = int.from_bytes(digest.digest()[:8], "big") / 2**64
        if not held or draw >= self.noise:
            return gold
        wrong = [n for n in offered if n not in held]
        return [wrong[int(draw * 1e6) % len(wrong)], *gold[1:]] if wrong else gold


def _offered(body: dict[str, Any]) -> list[str] | None:
    """The category names the request allows (its response schema's `enum`), if it says."""
    fmt = body.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema") or {}
    names = schema.get("properties", {}).get("categories", {}).get("items", {}).get("enum")
    return list(names) if isinstance(names, list) else None


@contextlib.contextmanager
def serve(oracle: Oracle) -> Iterator[str]:
    """Serve `oracle` on a free port of 127.0.0.1; yields the base URL (`.../v1`)."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = json.dumps(oracle.answer(body), ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
