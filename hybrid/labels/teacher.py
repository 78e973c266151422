"""An LLM as teacher: it labels the articles the bootstrap chose, once each.

The request is the fallback's (the authorized names as an enum, the article cut to
`llm_article_tokens`, up to `llm_few_shot` articles already labelled as examples), without
the classifier's guesses: a teacher's labels must not echo the model they will train. The
answer is validated locally as every LLM answer is (only authorized names; tags plain text
the article supports), cached, and within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from hybrid.config import Config
from hybrid.errors import UsageError
from hybrid.ingest.article import Article
from hybrid.ingest.clean import CleanText
from hybrid.labels.ledger import Label
from hybrid.llm.ask import Asker
from hybrid.llm.client import Budget
from hybrid.llm.cost import Estimate, estimate
from hybrid.llm.prompt import Example, build_messages, validate
from hybrid.llm.refine import answer_key, supported_tags
from hybrid.llm.stats import LLMStats
from hybrid.taxonomy import Taxonomy


class LLMTeacher:
    def __init__(self, config: Config, taxonomy: Taxonomy, budget: Budget | None = None
                 ) -> None:
        self.config = config
        self.taxonomy = taxonomy
        self.stats = LLMStats("teacher", config.llm_model)
        self._budget = budget
        self._asker: Asker | None = None

    @property
    def asker(self) -> Asker:
        """Made on first use: estimating the cost needs no server."""
        if self._asker is None:
            try:
                self._asker = Asker(self.config, self.taxonomy, self.stats, budget=self._budget)
            except ValueError as exc:
                raise UsageError(f"the teacher: {exc} (--llm-base-url and --llm-model), or "
                                 "--review-out FILE to have a person label instead") from exc
        return self._asker

    def _messages(self, text: CleanText, examples: Sequence[Example],
                  offered: Taxonomy | None = None) -> list[dict[str, str]]:
        c = self.config
        return build_messages(self.taxonomy if offered is None else offered, text, [],
                              list(examples), c.max_categories, c.n_tags, c.llm_article_tokens)

    def estimate(self, texts: Sequence[CleanText], offered: Taxonomy | None = None
                 ) -> Estimate:
        """The cost of labelling `texts`; with `offered`, of asking them as controls."""
        return estimate(self.config, [self._messages(t, [], offered) for t in texts],
                        "label" if offered is None else "ask as the teacher check's controls")

    def control(self, article: Article, text: CleanText, offered: Taxonomy
                ) -> list[str] | str:
        """The teacher's categories for `article` from the `offered` list only, none allowed
        and no examples shown (the teacher check's negative controls); or why there is no
        answer, as `label` says."""
        answer = self.asker.ask(answer_key(article), self._messages(text, [], offered), offered)
        if answer.reply is None:
            return answer.status
        if not isinstance(answer.reply.data.get("categories"), list | str):
            return "error"  # no answer to the question, which is no "none" either
        verdict = validate(answer.reply.data, offered, self.config.max_categories,
                           self.config.n_tags)
        # a category off the offered list is a pick all the same: only an empty list says
        # none (else a teacher that ignores the list would look careful)
        return verdict.categories or verdict.blocked

    def label(self, article: Article, text: CleanText, examples: Sequence[Example] = ()
              ) -> Label | str:
        """The teacher's label, or why there is none ("over_budget", "error",
        "unavailable"): then the article stays unlabelled and may be asked again later."""
        answer = self.asker.ask(answer_key(article), self._messages(text, examples))
        if answer.reply is None:
            return answer.status
        reply = answer.reply
        verdict = validate(reply.data, self.taxonomy, self.config.max_categories,
                           self.config.n_tags, supported_tags(text, None))
        self.asker.count("answered")
        self.asker.count("blocked", len(verdict.blocked))
        self.asker.count("tags_dropped", verdict.dropped_tags)
        # the tokens the answer took, cached or not (what the label cost); calls: what it
        # cost this time
        return Label(article.id, verdict.categories, verdict.tags, "llm",
                     self.asker.client.model, prompt_tokens=reply.prompt_tokens,
                     completion_tokens=reply.completion_tokens,
                     calls=0 if answer.cached else reply.attempts)

    def close(self) -> None:
        if self._asker is not None:
            self._asker.close()
