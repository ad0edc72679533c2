"""Scoring of one eval scenario: tool choice, facts, groundedness, cost and latency.

Pure functions of what the runner (evals/run.py) read from the API, so they can be tested
without a stack (evals/test_scoring.py). Every score is in [0, 1]; `None` means "not
measured" and is left out of a scenario's mean.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

# Words that start with a capital for reasons other than being a name.
STOPWORDS = {
    "a", "an", "and", "as", "at", "but", "by", "for", "from", "here", "hi", "hello", "how",
    "i", "if", "in", "is", "it", "its", "let", "me", "my", "no", "not", "of", "ok", "on",
    "or", "so", "that", "the", "their", "then", "there", "these", "this", "those", "to",
    "we", "what", "when", "where", "which", "who", "why", "with", "yes", "you", "your",
}

# Whole words: a timestamp such as 2026-12-02T07:10:59Z is one word (and no entity), not "T07".
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_'/\-]*")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])\d+(?:,\d{3})*(?:\.\d+)?(?![A-Za-z_]|\.\d)")


def normalize(text: str) -> str:
    """Lower case, runs of whitespace as one space."""
    return " ".join(text.lower().split())


def contains_term(text: str, term: str) -> bool:
    """Whether `term` occurs in `text` as a whole term (case and spacing ignored): "84" is not
    in "184" nor in "84.5", "paris" is not in "parisian"."""
    term = normalize(term)
    if not term:
        return True
    text = normalize(text)
    pattern = re.escape(term)
    if term[0].isalnum():
        pattern = r"(?<![a-z0-9])(?<![0-9]\.)" + pattern
    if term[-1].isalnum():
        pattern = pattern + r"(?![a-z0-9])(?!\.[0-9])"
    return re.search(pattern, text) is not None


# ---- tool choice ---------------------------------------------------------------------------


@dataclass
class ToolScore:
    precision: float
    recall: float
    f1: float
    unexpected: list[str]
    missing: list[str]
    forbidden_called: list[str]

    @property
    def score(self) -> float:
        """F1 of the tools called against the expected ones; 0 when a forbidden tool ran."""
        return 0.0 if self.forbidden_called else self.f1


def score_tools(expected: Iterable[str], called: Iterable[str], forbidden: Iterable[str] = ()) -> ToolScore:
    """Precision and recall of the distinct tools called against those expected (no tool
    expected and none called is a perfect score; a call when none was expected is precision
    0), and the forbidden tools that were called anyway."""
    want, got, banned = set(expected), set(called), set(forbidden)
    hit = want & got
    precision = len(hit) / len(got) if got else 1.0
    recall = len(hit) / len(want) if want else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ToolScore(
        precision=precision,
        recall=recall,
        f1=f1,
        unexpected=sorted(got - want),
        missing=sorted(want - got),
        forbidden_called=sorted(got & banned),
    )


# ---- facts and groundedness ----------------------------------------------------------------


def score_facts(answer: str, facts: Iterable[str]) -> tuple[float, list[str]]:
    """The share of the facts found in the answer (1.0 when there are none) and those missing."""
    facts = list(facts)
    missing = [f for f in facts if not contains_term(answer, f)]
    return (1.0 - len(missing) / len(facts) if facts else 1.0), missing


def _number(token: str) -> Optional[float]:
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


def numbers(text: str) -> list[str]:
    """The numbers written in `text` (thousands separators allowed), as written."""
    return [m.group(0) for m in _NUMBER.finditer(text)]


def entities(text: str) -> list[str]:
    """Named entities, roughly: capitalised words not at the start of a sentence (nor common
    words), and words with a '/' or '_' such as Europe/Paris or web_search."""
    found = []
    for m in _TOKEN.finditer(text):
        word = m.group(0)
        if word[0].isdigit():
            continue  # a number, a date, a timestamp
        if "/" in word or "_" in word:
            found.append(word.strip("'-/"))
            continue
        if not word[0].isupper() or word.lower() in STOPWORDS:
            continue
        before = text[: m.start()].rstrip(" \t*_#>`\"'(")
        if not before or before[-1] in ".!?\n" or text[len(before) : m.start()].count("\n"):
            continue  # the first word of a sentence or line
        found.append(word)
    return found


def claims(answer: str) -> list[str]:
    """What the answer asserts that can be checked against the tool results: its numbers and
    named entities, each once, in order."""
    seen, out = set(), []
    for claim in numbers(answer) + entities(answer):
        key = claim.lower()
        if key not in seen:
            seen.add(key)
            out.append(claim)
    return out


def supported(claim: str, sources: str) -> bool:
    """Whether a claim appears in the sources: a number by value (84 matches 84.0 and 1,000
    matches 1000), anything else as a whole term."""
    value = _number(claim)
    if value is not None:
        for token in numbers(sources):
            other = _number(token)
            if other is not None and math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12):
                return True
        return False
    return contains_term(sources, claim)


@dataclass
class Groundedness:
    score: Optional[float]
    source: str
    claims: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def score_groundedness(
    answer: str,
    tool_results: Optional[list[str]],
    prompt: str = "",
    trace_value: Optional[float] = None,
    results_source: str = "tool results",
    tool_names: Iterable[str] = (),
) -> Groundedness:
    """How much of the answer the tool results support.

    - `trace_value` (the turn's own `groundedness` in the trace, when the API gives one) is
      used as it is;
    - otherwise the share of the answer's claims (numbers, named entities) found in the tool
      results, in the prompt (repeating the question is not made up) or among the names of
      the tools called ("the web_search tool says"); 1.0 for an answer with no claims;
    - `None` ("not measured") when there are no tool results to check against.
    """
    if trace_value is not None:
        value = min(1.0, max(0.0, float(trace_value)))
        return Groundedness(score=value, source="trace")
    if not tool_results:
        return Groundedness(score=None, source="none (no tool results)")
    sources = "\n".join(list(tool_results) + [prompt] + list(tool_names))
    found = claims(answer)
    unsupported = [c for c in found if not supported(c, sources)]
    score = 1.0 - len(unsupported) / len(found) if found else 1.0
    return Groundedness(score=score, source=results_source, claims=found, unsupported=unsupported)


# ---- one scenario --------------------------------------------------------------------------


@dataclass
class Verdict:
    score: float
    passed: bool
    reasons: list[str]
    cost_ok: bool
    latency_ok: bool


def within(value: Optional[float], ceiling: Optional[float]) -> bool:
    """No ceiling, or a value at or under it. An unknown value (an unpriced model) is not a
    breach: the report says it was not measured."""
    return ceiling is None or value is None or value <= ceiling


def verdict(
    tools: ToolScore,
    facts: float,
    missing_facts: list[str],
    grounded: Groundedness,
    cost_usd: Optional[float],
    max_cost_usd: Optional[float],
    latency_ms: Optional[float],
    max_latency_ms: Optional[float],
    min_score: float,
    error: Optional[str] = None,
) -> Verdict:
    """The scenario's score (the mean of the tool, facts and, when measured, groundedness
    scores; 0 when the turn failed) and whether it passed: score at least `min_score`, every
    fact present, no forbidden tool called, and within its cost and latency ceilings."""
    if error:
        return Verdict(0.0, False, [error], within(cost_usd, max_cost_usd), within(latency_ms, max_latency_ms))
    parts = [tools.score, facts] + ([grounded.score] if grounded.score is not None else [])
    score = sum(parts) / len(parts)
    reasons = []
    if tools.forbidden_called:
        reasons.append("called forbidden " + ", ".join(tools.forbidden_called))
    if tools.missing:
        reasons.append("did not call " + ", ".join(tools.missing))
    if tools.unexpected:
        reasons.append("unexpected " + ", ".join(tools.unexpected))
    if missing_facts:
        reasons.append("missing facts: " + ", ".join(repr(f) for f in missing_facts))
    if grounded.unsupported:
        reasons.append("unsupported claims: " + ", ".join(grounded.unsupported[:5]))
    cost_ok = within(cost_usd, max_cost_usd)
    latency_ok = within(latency_ms, max_latency_ms)
    if not cost_ok:
        reasons.append(f"cost ${cost_usd:.6f} over ${max_cost_usd:.6f}")
    if not latency_ok:
        reasons.append(f"latency {latency_ms:.0f} ms over {max_latency_ms:.0f} ms")
    passed = (
        score >= min_score
        and not missing_facts
        and not tools.forbidden_called
        and cost_ok
        and latency_ok
    )
    if score < min_score:
        reasons.append(f"score {score:.2f} under {min_score:.2f}")
    return Verdict(score, passed, reasons, cost_ok, latency_ok)


def overall(scores: list[float]) -> float:
    """The mean of the scenarios' scores (0 for none)."""
    return sum(scores) / len(scores) if scores else 0.0
