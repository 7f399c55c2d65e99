"""A goal over several targets at once: a node is an example when it fools at least K of them.

Composed of one :class:`~cdvkit.search.goal.TargetGoal` per target, each asked under the run's
protocol through its own clients (so each target's calls, cache and cost stay its own); the
engine sees one goal with the same three methods, and nothing else in the search changes.

Definitions (``required`` = K: ``all`` is every target, ``any`` is one):

- *originally correct*: at least K targets answer the original right under the protocol. Only
  those targets (the question's *counted* targets) are asked about its distracted nodes: a
  target already wrong on the original would be "fooled" by no distraction at all. With
  ``all`` this is "every target answers the original right".
- the search's *score* of a node: the mean of the K lowest scores (P(correct) or accuracy) over
  the counted targets. It reaches 0 only when K targets are sure to be wrong, and still moves
  when any of those K moves (``any``: the lowest; ``all``: the mean over every target).
- a *candidate*: at least K counted targets' own scores say fooled; *verify* confirms each of
  those under the protocol, and the node is an example when at least K are confirmed.

Each node keeps every target's score in ``outputs["targets"][model]`` and every target's
verdict under the protocol in ``outputs["verify"]["targets"][model]``; :func:`target_verdicts`
reads them back as one row per target for reports and ``cdv show``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cdvkit.models.client import current_question
from cdvkit.models.errors import STOPS_RUN
from cdvkit.protocol import Outcome
from cdvkit.search.goal import GoalResult, TargetGoal
from cdvkit.search.node import Node

MULTI = "multi"  # a node's mode when several targets scored it (each keeps its own mode)


def required_targets(fool: str | int, targets: int) -> int:
    """K, the targets a node must fool, from ``--fool`` (all | any | a whole number)."""
    text = str(fool).strip().lower()
    if text == "all":
        return targets
    if text == "any":
        return 1
    if not text.isdigit():
        raise ValueError(f"--fool must be all, any or a whole number, not {fool!r}")
    k = int(text)
    if k < 1:
        raise ValueError(f"--fool must be at least 1, not {k}")
    if k > targets:
        raise ValueError(f"--fool must be at most {targets} (the targets given), not {k}")
    return k


def check_targets(targets: Sequence[str], fool: str | int) -> None:
    """Raise ValueError when the targets or ``--fool`` cannot make a run (none, one twice, a K
    above the number of targets)."""
    if not targets:
        raise ValueError("--target: name at least one provider/model")
    twice = next((t for i, t in enumerate(targets) if t in targets[:i]), None)
    if twice is not None:
        raise ValueError(f"--target {twice} is given twice")
    required_targets(fool, len(targets))


def target_roles(targets: Sequence[str]) -> list[tuple[str, str, str]]:
    """(role, confirmation role, provider/model) of each target: the first is paid as
    ``target`` and ``verify`` (as in a one-target run), the n-th as ``targetN`` and ``verifyN``,
    so each target's cost is a line of its own and ``[roles.targetN]`` sets its options."""
    return [
        ("target", "verify", t) if i == 1 else (f"target{i}", f"verify{i}", t)
        for i, t in enumerate(targets, 1)
    ]


@dataclass
class MultiGoalResult(GoalResult):
    """The search's score of a node on several targets; ``targets`` holds each one's result."""

    targets: dict[str, GoalResult] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    required: int = 1
    uncounted: tuple[str, ...] = ()  # targets wrong on the original: never asked here

    def to_outputs(self) -> dict[str, Any]:
        per: dict[str, Any] = {}
        for name, r in self.targets.items():
            one = {"role": self.roles.get(name), "score": r.score, "candidate": r.candidate}
            per[name] = one | r.to_outputs()
        for name in self.uncounted:
            per[name] = {"role": self.roles.get(name), "counted": False}
        return {"mode": MULTI, "answers": self.answers, "required": self.required, "targets": per}


@dataclass
class MultiOutcome(Outcome):
    """Several targets' answers under the protocol. ``correct`` is False when the node fools
    at least ``required`` targets (the original: when fewer than ``required`` answer it right,
    so it cannot be searched); ``accuracy`` is the mean over the targets asked."""

    targets: dict[str, Outcome] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    required: int = 1

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["required"] = self.required
        out["targets"] = {
            name: {"role": self.roles.get(name)} | o.to_dict() for name, o in self.targets.items()
        }
        return out


class MultiTargetGoal:
    """Scores and confirms nodes on every target; see the module's docstring for the rules.

    ``goals`` maps each target's name (its provider/model) to its goal, first target first.
    """

    def __init__(self, goals: dict[str, TargetGoal], required: int) -> None:
        if len(goals) < 2:
            raise ValueError("a multi-target goal needs at least two targets")
        if not 1 <= required <= len(goals):
            raise ValueError(f"required must lie between 1 and {len(goals)}, not {required}")
        self.goals = goals
        self.required = required
        self.roles = {name: g.client.role for name, g in goals.items()}
        # The targets each question's original was answered right by, by question id. The
        # engine asks the root before any child, and a resumed run replays from the root, so
        # this is always filled before a child needs it.
        self._counted: dict[str | None, tuple[str, ...]] = {}

    def scores_apart(self, node: Node | None = None) -> bool:
        """Whether any target's score is not its protocol's answer (the engine then asks the
        original under the protocol before scoring it)."""
        return any(g.scores_apart(node) for g in self.goals.values())

    def _asked(self, node: Node) -> tuple[str, ...]:
        everyone = tuple(self.goals)
        if node.parent_path is None and not self.scores_apart(node):
            return everyone  # the original, scored before anyone has answered it
        return self._counted.get(current_question.get(), everyone)

    async def evaluate(self, node: Node) -> GoalResult:
        """Every counted target's score of ``node``, asked together."""
        asked = self._asked(node)
        results = await _together(self.goals[name].evaluate(node) for name in asked)
        per = dict(zip(asked, results, strict=True))
        scores = sorted(r.score for r in results)[: self.required]
        answers = [a | {"target": name} for name, r in per.items() for a in r.answers]
        return MultiGoalResult(
            score=sum(scores) / len(scores),
            candidate=sum(r.candidate for r in results) >= self.required,
            mode=MULTI,
            answers=answers,
            targets=per,
            roles=self.roles,
            required=self.required,
            uncounted=tuple(n for n in self.goals if n not in asked),
        )

    async def verify(self, node: Node, scored: GoalResult | None = None) -> Outcome:
        """The protocol's verdicts: on the original, every target's; on a distracted node, each
        candidate target's (a target whose own score says it is right is not asked again)."""
        per = scored.targets if isinstance(scored, MultiGoalResult) else {}
        root = node.parent_path is None
        names = tuple(self.goals) if root else tuple(n for n, r in per.items() if r.candidate)
        outcomes = await _together(self.goals[n].verify(node, per.get(n)) for n in names)
        by_name = dict(zip(names, outcomes, strict=True))
        if root:
            right = tuple(n for n, o in by_name.items() if o.correct)
            self._counted[current_question.get()] = right
            correct = len(right) >= self.required
        else:
            correct = sum(o.fooled for o in outcomes) < self.required
        accuracy = sum(o.accuracy for o in outcomes) / len(outcomes) if outcomes else 1.0
        # No answers of its own: each target's stay under its name, never mixed into one list
        # that a reader (training data: only the target's own replies) would take for one model's.
        return MultiOutcome(
            correct,
            accuracy,
            MULTI,
            targets=by_name,
            roles=self.roles,
            required=self.required,
        )


async def _together(coros: Any) -> list[Any]:
    """Await every call together; when some fail, raise the one that stops the run first."""
    results: Sequence[Any] = await asyncio.gather(*coros, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise next((e for e in errors if isinstance(e, STOPS_RUN)), errors[0])
    return list(results)


def target_verdicts(outputs: dict[str, Any] | None, *, original: bool) -> list[dict[str, Any]]:
    """One row per target of a node scored on several (empty for a one-target node): its name,
    role, the search's score, and its verdict in words. ``original``: the node is the question
    itself, whose verdicts are ``right``/``wrong`` under the protocol; a distracted node's are
    ``fooled`` (confirmed under the protocol), ``not confirmed`` (its score said fooled, the
    protocol did not), ``not fooled`` (its score said right) or ``not counted`` (wrong on the
    original, so never asked about this question's distracted nodes)."""
    outputs = outputs or {}
    scored = outputs.get("targets")
    verify = outputs.get("verify")
    verified = verify.get("targets") if isinstance(verify, dict) else None
    if not isinstance(scored, dict) and not isinstance(verified, dict):
        return []
    scored, verified = scored or {}, verified or {}
    rows = []
    for name in dict.fromkeys([*verified, *scored]):
        s, v = scored.get(name) or {}, verified.get(name)
        if isinstance(v, dict) and original:
            verdict = "right" if v.get("correct") else "wrong"
        elif s.get("counted") is False:
            verdict = "not counted"
        elif isinstance(v, dict):
            verdict = "not confirmed" if v.get("correct") else "fooled"
        else:
            verdict = "not fooled"
        v = v if isinstance(v, dict) else {}
        rows.append(
            {
                "target": name,
                "role": s.get("role") or v.get("role"),
                "score": s.get("score"),
                "mode": s.get("mode") or v.get("mode"),
                "verdict": verdict,
                "answers": v.get("answers") or s.get("answers") or [],
            }
        )
    return rows


def targets_label(config: dict[str, Any]) -> str:
    """A stored run's target(s) in words: ``a`` for one, ``a + b (fool all)`` for several."""
    target = config.get("target") or "–"
    if not isinstance(target, list):
        return str(target)
    return f"{' + '.join(map(str, target))} (fool {config.get('fool', 'all')})"
