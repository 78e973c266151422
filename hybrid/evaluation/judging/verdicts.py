"""A judge's verdicts, read strictly against the sheet's key: every article, list and tag of
the sheet judged once, verdicts and reasons from the rubric, a rating of 1 to 5, at most
two missing tags. Every problem is reported at once, by line, article, list and tag.

Only slips with one reading are forgiven: blank lines and code fences around the lines,
an id written as a number, lower case in letters, verdicts and reasons, an empty or "null"
reason on an accepted tag, a tag's case, width or spacing when one tag of the list fits,
"(no tags)" judged as if it were a tag, "missing" as null or as a single string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.errors import UsageError
from hybrid.evaluation.judging.sheet import NO_TAGS, REASONS, Key, KeyArticle
from hybrid.ingest.keys import label_key

_SHOWN_PROBLEMS = 40


class VerdictError(UsageError):
    """The judge's file does not cover the sheet, or says what the rubric does not allow."""


@dataclass
class TagVerdict:
    tag: str  # as shown on the sheet
    accepted: bool
    reason: str | None  # one of REASONS when rejected


@dataclass
class ListVerdict:
    tags: list[TagVerdict]  # in the sheet's order
    rating: int
    missing: list[str]


Verdicts = dict[str, dict[str, ListVerdict]]  # article number → letter → the list's verdict


def read_verdicts(path: str | Path, key: Key) -> Verdicts:
    """Every article's verdicts, or a `VerdictError` listing every problem of the file."""
    articles = {a.id: a for a in key.articles}
    problems: list[str] = []
    found: dict[str, tuple[int, dict[str, ListVerdict]]] = {}
    text = Path(path).read_text(encoding="utf-8-sig")
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("```"):
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {lineno}: not JSON ({exc})")
            continue
        if not isinstance(raw, dict) or "id" not in raw or not isinstance(raw.get("lists"),
                                                                           dict):
            problems.append(f'line {lineno}: not {{"id": ..., "lists": {{...}}}}')
            continue
        number = _number(raw["id"])
        if number not in articles:
            problems.append(f"line {lineno}: id {raw['id']!r} is no article of the sheet")
        elif number in found:
            problems.append(f"line {lineno}: article {number} is judged again (first on line "
                            f"{found[number][0]})")
        else:
            found[number] = (lineno, _article(raw["lists"], articles[number], problems))
    absent = [a.id for a in key.articles if a.id not in found]
    if absent:
        problems.append(f"no line for article{'s' if len(absent) > 1 else ''} "
                        f"{', '.join(absent)}")
    if problems:
        shown = "\n".join(f"- {p}" for p in problems[:_SHOWN_PROBLEMS])
        more = (f"\n- … and {len(problems) - _SHOWN_PROBLEMS} more"
                if len(problems) > _SHOWN_PROBLEMS else "")
        raise VerdictError(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
                           f" in the judge's verdicts (sheet of {key.set}):\n{shown}{more}")
    return {number: lists for number, (_, lists) in found.items()}


def _number(value: Any) -> str:
    return str(value).strip() if isinstance(value, int | str) else repr(value)


def _article(lists: Mapping[Any, Any], article: KeyArticle, problems: list[str]
             ) -> dict[str, ListVerdict]:
    out: dict[str, ListVerdict] = {}
    for letter, value in lists.items():
        name = str(letter).strip().upper()
        where = f"article {article.id}, list {name}"
        if name not in article.lists:
            problems.append(f"article {article.id}: no list {letter!r} on the sheet")
        elif name in out:
            problems.append(f"{where}: judged twice")
        else:
            out[name] = _list(value, article.lists[name].tags, where, problems)
    problems += [f"article {article.id}, list {x}: not judged" for x in article.lists
                 if x not in out]
    return out


def _list(value: Any, shown: Sequence[str], where: str, problems: list[str]) -> ListVerdict:
    if not isinstance(value, dict) or not isinstance(value.get("tags"), list):
        problems.append(f'{where}: not {{"tags": [...], "rating": ..., "missing": [...]}}')
        return ListVerdict([], 0, [])
    entries = []
    for k, entry in enumerate(value["tags"], 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("tag"), str):
            problems.append(f'{where}: tag entry {k} is not {{"tag": ..., "verdict": ..., '
                            f'"reason": ...}}')
        elif not (not shown and entry["tag"].strip() == NO_TAGS):
            entries.append(_tag(entry, where, problems))
    return ListVerdict(_match(entries, shown, where, problems),
                       _rating(value.get("rating"), where, problems),
                       _missing(value, where, problems))


def _tag(entry: Mapping[str, Any], where: str, problems: list[str]) -> TagVerdict:
    tag, verdict, reason = entry["tag"], entry.get("verdict"), entry.get("reason")
    verdict = verdict.strip().upper() if isinstance(verdict, str) else verdict
    if reason is None or (isinstance(reason, str) and reason.strip().lower() in ("", "null",
                                                                                   "none")):
        reason = None
    elif isinstance(reason, str):
        reason = reason.strip().upper()
    if verdict not in ("ACCEPT", "REJECT"):
        problems.append(f"{where}, tag {tag!r}: verdict {entry.get('verdict')!r} is neither "
                        f"ACCEPT nor REJECT")
    elif verdict == "ACCEPT" and reason is not None:
        problems.append(f"{where}, tag {tag!r}: accepted, yet with reason {reason!r}")
    elif verdict == "REJECT" and reason not in REASONS:
        problems.append(f"{where}, tag {tag!r}: rejected with reason {entry.get('reason')!r}, "
                        f"not one of {', '.join(REASONS)}")
    return TagVerdict(tag, verdict == "ACCEPT", reason)


def _match(entries: Sequence[TagVerdict], shown: Sequence[str], where: str,
           problems: list[str]) -> list[TagVerdict]:
    """The verdicts in the sheet's order: each shown tag takes the verdict that spells it
    exactly, else the one that differs only in case, width or spacing."""
    slots: list[TagVerdict | None] = [None] * len(shown)
    loose = []
    for entry in entries:
        free = [i for i, s in enumerate(shown) if slots[i] is None and s == entry.tag]
        if free:
            slots[free[0]] = entry
        else:
            loose.append(entry)
    for entry in loose:
        free = [i for i, s in enumerate(shown)
                if slots[i] is None and label_key(s) == label_key(entry.tag)]
        if len({shown[i] for i in free}) > 1:
            problems.append(f"{where}: tag {entry.tag!r} could be any of "
                            f"{', '.join(repr(shown[i]) for i in free)}")
        elif free:
            slots[free[0]] = TagVerdict(shown[free[0]], entry.accepted, entry.reason)
        elif any(label_key(s) == label_key(entry.tag) for s in shown):
            problems.append(f"{where}: tag {entry.tag!r} is judged more often than shown")
        else:
            problems.append(f"{where}: tag {entry.tag!r} is not on the sheet")
    problems += [f"{where}: tag {s!r} not judged" for s, v in zip(shown, slots, strict=True)
                 if v is None]
    return [v for v in slots if v is not None]


def _rating(value: Any, where: str, problems: list[str]) -> int:
    number = value.strip() if isinstance(value, str) else value
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 5:
        problems.append(f"{where}: rating {value!r} is not a whole number from 1 to 5")
        return 0
    return number


def _missing(value: Mapping[str, Any], where: str, problems: list[str]) -> list[str]:
    if "missing" not in value:
        problems.append(f'{where}: no "missing" (write [] when nothing is missing)')
        return []
    missing = value["missing"]
    missing = [] if missing is None else [missing] if isinstance(missing, str) else missing
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        problems.append(f'{where}: "missing" {value["missing"]!r} is not a list of tags')
        return []
    missing = [m.strip() for m in missing if m.strip()]
    if len(missing) > 2:
        problems.append(f'{where}: {len(missing)} missing tags, the rubric allows two')
    return missing
