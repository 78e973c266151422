"""Day one: from a taxonomy and unlabelled articles to a trained model, paying a teacher for
a few well-chosen labels.

Rounds end at 2, 5, 10, 20, 50, 100 labels per category, up to the budget. Each round
chooses what to label with the current model (zero-shot at first: `hybrid.labels.select`),
has the teacher label it (an LLM, or a person through a review file), keeps every label in
the ledger as it comes, trains, reports the out-of-fold quality, and writes the model. The
cost of the whole budget is estimated before the first call. A rerun, or a run after a kill,
starts from what the ledger holds: the budget counts every label ever paid for, answers
come from the LLM cache, and nothing is paid twice.

An LLM teacher is checked after the first round (after `CHECK_AFTER` articles asked, answered
or not, if that round is longer), before the rest of the budget is spent
(`hybrid.labels.teacher_check`: from its agreement with the zero-shot model, or from a
person's audit sheet; without it, with negative controls too: `hybrid.labels.controls`): one
estimated worse than the zero-shot model stops the rounds, and the zero-shot model is kept,
unless `llm_unchecked`. The controls' cost is printed with the labels', before any call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from hybrid.config import Config
from hybrid.ingest.article import Article
from hybrid.ingest.clean import CleanText, clean
from hybrid.ingest.records import load_articles
from hybrid.labels import controls, teacher_check
from hybrid.labels.audit import read_sheet, write_sheet
from hybrid.labels.ledger import FileLedger, Label, StoreLedger
from hybrid.labels.review import MONGO_ID, rows_from_predictions, write_rows
from hybrid.labels.select import choose
from hybrid.labels.teacher import LLMTeacher
from hybrid.learn.model import HybridModel
from hybrid.llm.cost import Estimate
from hybrid.llm.prompt import Example
from hybrid.mongo.store import Store
from hybrid.output import refuse_inputs
from hybrid.taxonomy import Taxonomy

SCHEDULE = (2, 5, 10, 20, 50, 100)  # labels per category at the end of each round
# an LLM teacher is checked after the first round, or after this many of its labels if the
# first round is longer (a long list of categories): enough to tell, and less to pay
CHECK_AFTER = 40


class Ledger(Protocol):
    def labels(self) -> dict[str, Label]: ...

    def add(self, label: Label) -> None: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...


@dataclass
class Round:
    number: int
    target: int  # labels at the end of the round, all sources
    labelled: int  # labels with an authorized category, for training
    new: int
    calls: int  # requests, failed ones included
    tokens: int
    metrics: dict = field(default_factory=dict)  # out of fold, on the labelled articles
    errors: int = 0  # articles without a usable answer: unlabelled, they may be chosen again
    trained: bool = True  # False: its labels were not trained on (the teacher was stopped)

    def text(self) -> str:
        quality = (f"out-of-fold accuracy {self.metrics['accuracy_top1']:.3f}, macro-F1 "
                   f"{self.metrics['macro_f1_top1']:.3f}" if self.metrics else
                   "zero-shot (too few labels to measure)" if self.trained else
                   "not trained on (see the teacher check)")
        errors = f", {self.errors} articles without a usable answer" if self.errors else ""
        return (f"round {self.number}: {self.new} new labels ({self.calls} calls, "
                f"{self.tokens} tokens{errors}), {self.labelled} usable → {quality}")


@dataclass
class Outcome:
    estimate: Estimate | None
    rounds: list[Round] = field(default_factory=list)
    stopped: str | None = None  # why the rounds stopped before the budget, if they did
    waiting: list[Article] = field(default_factory=list)  # for a person to label
    teacher: teacher_check.TeacherEstimate | None = None  # the LLM teacher, checked
    controls: Estimate | None = None  # the teacher check's negative controls, at most

    def as_dict(self) -> dict:
        return {"estimate": asdict(self.estimate) if self.estimate else None,
                "rounds": [asdict(r) for r in self.rounds], "stopped": self.stopped,
                "waiting": [a.id for a in self.waiting],
                "teacher": asdict(self.teacher) if self.teacher else None,
                "controls": asdict(self.controls) if self.controls else None}

    def text(self, out: str | Path, review_out: str | Path | None = None) -> str:
        if self.waiting:
            return (f"{len(self.waiting)} articles to label → {review_out}: fill in its "
                    "categories, `hybrid review import` it, and run this again")
        lines = [r.text() for r in self.rounds]
        if self.rounds:
            lines.append(f"{sum(r.calls for r in self.rounds)} calls, "
                         f"{sum(r.tokens for r in self.rounds)} tokens this run → {out}")
        elif not self.stopped:
            lines.append(self.estimate.text() + " (dry run: nothing asked)" if self.estimate
                         else f"the budget is labelled; trained on its labels → {out}")
        if self.teacher:
            lines.append(self.teacher.text())
        return "\n".join(lines + ([f"stopped: {self.stopped}"] if self.stopped else []))


def targets(per_category: int, categories: int) -> list[int]:
    return [b * categories for b in (*[b for b in SCHEDULE if b < per_category], per_category)]


class Bootstrap:
    """The rounds over `articles`, labels in `ledger`, the model written to `out`."""

    def __init__(self, articles: Sequence[Article], taxonomy: Taxonomy, config: Config,
                 ledger: Ledger, out: str | Path, per_category: int, strategy: str = "active",
                 seed: int = 0, progress: Callable[[str], None] = lambda _: None) -> None:
        self.articles = list(articles)
        self.taxonomy = taxonomy
        self.config = config
        self.ledger = ledger
        self.out = out
        self.per_category = per_category
        self.strategy = strategy
        self.seed = seed
        self.progress = progress
        self.texts: list[CleanText] = [clean(a) for a in self.articles]
        self.index = {a.id: i for i, a in enumerate(self.articles)}
        self._zero: HybridModel | None = None
        self._zero_p: np.ndarray | None = None

    def run(self, teacher: LLMTeacher | None, dry_run: bool = False,
            audit: str | Path | None = None, ids: str = "id") -> Outcome:
        """With `teacher` None, a person labels: the round's articles come back in
        `waiting` for a review file, and the rounds stop there. With `audit`, the teacher is
        checked against a person's labels of 20 of its articles in that review file (`ids`:
        its id column), written after the first round for the person to fill in."""
        labels = self._labels()
        plan = targets(self.per_category, len(self.taxonomy))
        todo = max(plan[-1] - len(labels), 0)
        outcome = Outcome(teacher.estimate(self._sample(todo)).scaled(todo)
                          if teacher and todo else None)
        check_at = min(plan[0], CHECK_AFTER)  # the teacher's labels it is checked on
        if outcome.estimate and audit is None:
            outcome.controls = controls.estimate(teacher, self._sample(check_at), self.taxonomy)
        for estimate in (outcome.estimate, outcome.controls):
            if estimate:
                self.progress(estimate.text())  # before any call
        if dry_run:
            return outcome
        check = (lambda: self._stop_teacher(teacher, labels, outcome, plan[-1], audit, ids,
                                            check_at)
                 ) if teacher is not None else (lambda: False)
        if todo and len(labels) >= check_at and check():  # resumed past that point
            return outcome
        model = self._train(labels)  # the model of what is labelled so far, written to `out`
        if not labels:
            self._zero = model
        if not todo:
            return outcome
        features = model.featurize(self.texts)
        embeddings = np.vstack([f.embedding for f in features])
        if model is self._zero:  # the teacher check reads them: not featurized twice
            self._zero_p = model.classifier.predict_proba(features)
        # articles the teacher was asked, answered or not: the check comes after `check_at`
        # of them, so a teacher that fails some answers is not checked only a round later
        asked = len(labels)
        for number, target in enumerate(plan, 1):
            if target <= len(labels):
                continue
            exclude = [self.index[k] for k in labels]
            picked = (self._first_round_rest(target, exclude, embeddings)
                      if number == 1 and labels else None)
            if picked is None:
                picked = choose(self.strategy, not labels,
                                model.classifier.predict_proba(features), embeddings,
                                target - len(labels), exclude, self.seed + number)
            if teacher is None:
                outcome.waiting = [self.articles[i] for i in picked]
                return outcome
            parts, held = [picked], False
            if outcome.teacher is None and asked < check_at < asked + len(picked):
                cut = check_at - asked  # the check comes within this round
                parts = [picked[:cut], picked[cut:]]
            new = calls = tokens = errors = 0
            for part in parts:
                got = self._ask(teacher, part, labels, embeddings)
                asked += len(part)
                new, calls, tokens, errors = (new + got[0], calls + got[1], tokens + got[2],
                                              errors + got[3])
                outcome.stopped = got[4]
                if outcome.stopped:
                    break
                if outcome.teacher is None and asked >= check_at:
                    spent = teacher.asker.budget.calls, teacher.asker.budget.tokens
                    held = check()  # its controls are this round's calls too
                    calls += teacher.asker.budget.calls - spent[0]
                    tokens += teacher.asker.budget.tokens - spent[1]
                    if held:
                        break
            usable = sum(1 for label in labels.values() if label.categories)
            if held:
                outcome.rounds.append(Round(number, target, usable, new, calls, tokens, {},
                                            errors, trained=False))
                self.progress(outcome.rounds[-1].text())
                break
            model = self._train(labels)
            outcome.rounds.append(Round(number, target, usable, new, calls, tokens,
                                        model.manifest.get("metrics", {}), errors))
            self.progress(outcome.rounds[-1].text())
            if outcome.stopped:
                break
        return outcome

    def _stop_teacher(self, teacher: LLMTeacher, labels: dict[str, Label], outcome: Outcome,
                      budget: int, audit: str | Path | None, ids: str, first: int) -> bool:
        """Check the teacher on its `first` labels (the first round's, in ledger order); True
        when the rounds must stop there (it is worse than the zero-shot model, or its audit
        sheet waits for a person): then the zero-shot model is what `out` holds. Later
        rounds' labels are the articles the model was least sure of, where the zero-shot
        model's probabilities say little: a resumed run checked on them stopped a good
        teacher."""
        names = self.taxonomy.names
        taught = [label for label in labels.values()
                  if label.source == "llm" and label.model == teacher.asker.client.model
                  ][:first]
        if not taught:
            return False
        zero = self._zero_shot()
        proba = self._zero_proba()
        if audit is not None and not Path(audit).exists():
            n = write_sheet(audit, [self.articles[self.index[x.id]] for x in taught], ids,
                            self.seed)
            outcome.stopped = (f"{n} of the teacher's articles to audit → {audit}: fill in "
                               "their categories (the sheet suggests none), and run this "
                               "again with the same --audit")
        elif audit is not None:
            truth, errors = read_sheet(audit, self.taxonomy, self.config.max_categories)
            for key, message in errors.items():
                self.progress(f"audit sheet {audit}: article {key!r}: {message}")
            audited = [x for x in taught if x.id in truth]
            if not audited:
                outcome.stopped = (f"no category is filled in in {audit}: fill in the "
                                   "categories of its articles, and run this again")
            else:
                outcome.teacher = teacher_check.by_audit(
                    [x.categories[:1] != [] and x.categories[0] in truth[x.id] for x in audited],
                    [names[proba[self.index[x.id]].argmax()] in truth[x.id] for x in audited])
        else:
            rows = [self.index[x.id] for x in taught]
            bound = controls.ask(teacher, [self.articles[i] for i in rows],
                                 [self.texts[i] for i in rows], proba[rows], self.taxonomy)
            outcome.teacher = teacher_check.by_agreement(
                proba[rows], [[names.index(c) for c in x.categories if c in names]
                              for x in taught], proba, self.seed, bound)
        if outcome.teacher is not None:
            self.progress(outcome.teacher.text())
            if outcome.teacher.below and self.config.llm_unchecked:
                self.progress("going on with it anyway (--llm-unchecked)")
            elif outcome.teacher.below:
                outcome.stopped = (
                    f"the teacher {teacher.asker.client.model} is estimated worse than the "
                    f"zero-shot model (accuracy {outcome.teacher.accuracy()} against "
                    f"{outcome.teacher.zero_shot.share()}): the other {budget - len(labels)} "
                    "labels of the budget were not asked for, and the zero-shot model is "
                    f"kept → {self.out}. Use a stronger teacher, or a person (--review-out); "
                    "--audit FILE measures it on 20 articles a person labels; "
                    "--llm-unchecked goes on with it")
        if outcome.stopped:
            zero.save(self.out, self.config.model_key)
        return outcome.stopped is not None

    def _zero_shot(self) -> HybridModel:
        """The zero-shot model of these articles (their labels unused)."""
        if self._zero is None:
            self._zero = HybridModel.train([replace(a, categories=[], tags=[])
                                            for a in self.articles], self.taxonomy,
                                           self.config, texts=self.texts)
        return self._zero

    def _zero_proba(self) -> np.ndarray:
        """The zero-shot model's probabilities for every article, computed once."""
        if self._zero_p is None:
            zero = self._zero_shot()
            self._zero_p = zero.classifier.predict_proba(zero.featurize(self.texts))
        return self._zero_p

    def _first_round_rest(self, target: int, exclude: list[int], embeddings: np.ndarray
                          ) -> list[int] | None:
        """A first round resumed (it stopped for an audit, a budget, an interrupt) goes on
        with the articles it chose at its start, from the zero-shot model, when everything
        labelled is among them. Chosen again from a model of its first labels, the round
        would no longer cover the corpus, and the run would not be the one never stopped
        (on csl, −3 to +13 points of top-1 after an audit). None: labels from elsewhere."""
        chosen = choose(self.strategy, True, self._zero_proba(), embeddings, target, [],
                        self.seed + 1)
        done = set(exclude)
        return [i for i in chosen if i not in done] if done <= set(chosen) else None

    def _labels(self) -> dict[str, Label]:
        """The ledger's labels of these articles (a label of another article is not ours)."""
        return {k: v for k, v in self.ledger.labels().items() if k in self.index}

    def _sample(self, n: int, most: int = 200) -> list[CleanText]:
        """Texts to estimate the cost of labelling `n` articles from (not yet chosen)."""
        rng = np.random.default_rng(self.seed)
        picked = rng.choice(len(self.texts), size=min(n, most, len(self.texts)), replace=False)
        return [self.texts[i] for i in picked]

    def _ask(self, teacher: LLMTeacher, picked: list[int], labels: dict[str, Label],
             embeddings: np.ndarray) -> tuple[int, int, int, int, str | None]:
        """Label `picked`, each label in the ledger at once. Returns (new labels, calls,
        tokens, articles without a usable answer, why it stopped early); calls and tokens
        are what the budget booked, failed requests included."""
        budget = teacher.asker.budget
        spent = budget.calls, budget.tokens
        new = errors = 0
        stopped = None
        for i in picked:
            article = self.articles[i]
            label = teacher.label(article, self.texts[i], self._examples(i, labels, embeddings))
            if isinstance(label, str):
                if label in ("over_budget", "unavailable"):
                    stopped = (f"the teacher stopped: {label} "
                               f"({teacher.asker.stopped or 'budget spent'})")
                    break
                errors += 1  # no usable answer for this article: it may be chosen again later
                continue
            self.ledger.add(label)
            labels[label.id] = label
            new += 1
        return new, budget.calls - spent[0], budget.tokens - spent[1], errors, stopped

    def _examples(self, i: int, labels: dict[str, Label], embeddings: np.ndarray
                  ) -> list[Example]:
        """The nearest labelled articles, as few-shot examples for the teacher."""
        k = self.config.llm_few_shot
        known = [self.index[key] for key, label in labels.items() if label.categories]
        if k <= 0 or not known:
            return []
        nearest = np.argsort(-(embeddings[known] @ embeddings[i]), kind="stable")[:k]
        out = []
        for j in nearest:
            label = labels[self.articles[known[j]].id]
            out.append(Example(self.articles[known[j]].title, label.categories, label.tags))
        return out

    def _train(self, labels: dict[str, Label]) -> HybridModel:
        articles = [replace(a, categories=labels[a.id].categories, tags=labels[a.id].tags)
                    if a.id in labels else replace(a, categories=[], tags=[])
                    for a in self.articles]
        model = HybridModel.train(articles, self.taxonomy, self.config, texts=self.texts)
        model.save(self.out, self.config.model_key)
        return model


def bootstrap(taxonomy: Taxonomy, config: Config, out: str | Path, per_category: int,
              data: str | Path | None = None, labels: str | Path | None = None,
              strategy: str = "active", review_out: str | Path | None = None,
              dry_run: bool = False, progress: Callable[[str], None] = lambda _: None,
              audit: str | Path | None = None) -> Outcome:
    """`hybrid bootstrap`: articles and labels from `data` and the `labels` ledger file, or
    from the configured MongoDB collection; the teacher is the configured LLM, or with
    `review_out` a person, who gets a review file of the round's articles. Unless it is a
    dry run, it holds the ledger's lock throughout (`LeaseHeld` if another bootstrap does).
    `audit`: the review file through which a person checks the LLM teacher."""
    refuse_inputs(labels, [data])
    refuse_inputs(review_out, [data, labels])
    refuse_inputs(audit, [data, labels, review_out])
    with contextlib.ExitStack() as stack:
        if data is not None:
            articles, ledger = load_articles(data, config), FileLedger(labels)
            articles = [replace(a, categories=[], tags=[]) for a in articles]
        else:
            ledger = StoreLedger(stack.enter_context(Store(config)))
            articles = ledger.articles()
        if not dry_run:
            stack.enter_context(ledger.lock())
        teacher = None if review_out else stack.enter_context(
            contextlib.closing(LLMTeacher(config, taxonomy)))
        job = Bootstrap(articles, taxonomy, config, ledger, out, per_category, strategy,
                        progress=progress)
        outcome = job.run(teacher, dry_run, audit, "id" if data is not None else MONGO_ID)
    if outcome.waiting:
        model = HybridModel.load(out, config=config)
        write_rows(rows_from_predictions(outcome.waiting, model.predict(outcome.waiting)),
                   review_out, "id" if data is not None else MONGO_ID, inputs=[data, labels])
    return outcome
