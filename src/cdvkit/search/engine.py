"""The search for one question, composed of swappable parts.

Proposer, constraints, goal and strategy are each replaceable, as in TextAttack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import NO_CHOICE, Question
from cdvkit.models.errors import STOPS_RUN, ModelError
from cdvkit.search import node as ns
from cdvkit.search.constraints import Constraint
from cdvkit.search.goal import GoalResult, TargetGoal
from cdvkit.search.node import Node
from cdvkit.search.proposers import ProposalContext, Proposer
from cdvkit.search.strategies import Strategy
from cdvkit.store import RunStore
from cdvkit.store.status import QuestionStatus

DEFERRED = "not asked yet: the target still answers this node right (judge_last)"


@dataclass
class SearchLimits:
    max_expansions: int = 10
    max_good: int = 3
    max_depth: int = 5  # most distraction sentences stacked on one question


# Question statuses a search ends with.
DONE, ORIGINAL_FAILED, INCOMPLETE = (
    QuestionStatus.DONE,
    QuestionStatus.ORIGINAL_FAILED,
    QuestionStatus.INCOMPLETE,
)


@dataclass
class QuestionResult:
    question_id: str
    status: str  # DONE | ORIGINAL_FAILED | INCOMPLETE
    original_rate: float  # share of the protocol's answers to the original that are right
    examples: list[Node] = field(default_factory=list)
    expansions: int = 0
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Searcher:
    proposer: Proposer
    constraints: list[Constraint]
    goal: TargetGoal
    strategy_factory: Callable[[], Strategy]
    limits: SearchLimits = field(default_factory=SearchLimits)
    seed: int = 0
    store: RunStore | None = None
    # Ask constraints that call a model (the LLM judge) only about children the target fails
    # and about nodes about to be expanded: a child that is never expanded and never fools the
    # target needs no verdict. Every example and every expanded node is still checked.
    judge_last: bool = False
    # Wrong answers aimed at per expanded free-form node (multiple choice aims at every option).
    wrong_answers: int = 3
    # Distractions written per wrong answer at each expansion: the k-th round of a node's
    # proposals is the proposer's k-th sample (a batch proposer: one call per round).
    proposals: int = 1
    # A child's choices: "keep" the parent's order, so the target's drop is the distraction's
    # alone, or "shuffle" them as the paper's code does (a drop then mixes in the new order).
    choice_order: str = "keep"

    def __post_init__(self) -> None:
        # Local checks first: a child they drop costs no model call (a stable sort keeps order).
        self.constraints = sorted(self.constraints, key=lambda c: bool(c.calls_model))

    def _save(self, qid: str, node: Node, nodes: list[Node]) -> None:
        nodes.append(node)
        if self.store is not None:
            self.store.save_node(qid, node.to_record())

    async def search(self, q: Question) -> QuestionResult:
        nodes: list[Node] = []
        root = Node.root(q)
        # Originally correct is the protocol's verdict, never the search's cheaper score. When
        # the two differ the verdict comes first (a question already failed needs no score);
        # when the search scores with the protocol itself, the verdict is that same answer.
        original = await self.goal.verify(root) if self.goal.scores_apart(root) else None
        if original is not None and original.fooled:
            root.score, root.outputs = original.accuracy, {"verify": original.to_dict()}
            self._save(q.id, root, nodes)
            # Already failed without any distraction: recorded, not searched.
            return QuestionResult(q.id, ORIGINAL_FAILED, original.accuracy, nodes=nodes)
        res = await self.goal.evaluate(root)
        original = original or await self.goal.verify(root, res)
        root.score = res.score
        root.outputs = {**res.to_outputs(), "verify": original.to_dict()}
        self._save(q.id, root, nodes)
        if original.fooled:
            return QuestionResult(q.id, ORIGINAL_FAILED, original.accuracy, nodes=nodes)

        strategy = self.strategy_factory()
        strategy.push(root)
        seen = {root.question}
        result = QuestionResult(q.id, DONE, original.accuracy, nodes=nodes)
        while result.expansions < self.limits.max_expansions and (
            len(result.examples) < self.limits.max_good
        ):
            parent = strategy.pop()
            if parent is None:
                break
            if parent.depth > self.limits.max_depth:
                continue
            if self.judge_last and not await self._verify_deferred(q, parent, nodes):
                # Judged before paying for its children: an invalid node is never expanded.
                if self.store is not None:
                    self.store.save_node(q.id, parent.to_record())
                continue
            result.expansions += 1
            wanted = self.limits.max_good - len(result.examples)
            children = await self._expand(q, parent, seen, wanted)
            open_children = []
            for child in children:
                self._save(q.id, child, nodes)
                if child.status == ns.GOOD:
                    result.examples.append(child)
                elif child.status == ns.OPEN:
                    strategy.push(child)
                    open_children.append(child)
            strategy.expanded(parent, open_children)
            if self._rewrites:
                break  # a rewrite baseline asks for one rewrite of the question, no search
        if any(n.status == ns.ERROR for n in nodes):
            # A lost call may have hidden an example: the question is no result until a rerun
            # has every answer (the replay pays only for what is missing).
            result.status = INCOMPLETE
        return result

    @property
    def _rewrites(self) -> bool:
        """Whether the proposer rewrites the whole question (the paper's lengthening baselines)
        instead of adding a sentence aimed at each wrong answer."""
        return bool(getattr(self.proposer, "rewrites", False))

    async def _expand(self, q: Question, parent: Node, seen: set[str], wanted: int) -> list[Node]:
        # Each round of proposals goes in three phases that keep the tree identical however calls
        # interleave: proposals for every wrong answer in flight together, then children composed
        # and deduplicated in answer order (a duplicate costs nothing further), then constraints
        # and goal for the rest together. A further round is paid only while the question still
        # lacks examples (``wanted``): rounds are more of the same node's children, not new depth.
        targets = await self._targets(q, parent)
        if isinstance(targets, Exception):
            # The call naming the wrong answers failed: one error child keeps the question
            # incomplete, so a rerun pays for that call and expands the node in full.
            return [self._compose(parent, 0, None, None, targets)]
        wrongs = tuple(w for _, w in targets)
        children: list[Node] = []
        for r in range(self.proposals):
            ks = range(r * len(targets), (r + 1) * len(targets))
            rngs = [parent.rng(self.seed, q.id, f"child{k}") for k in ks]
            texts = await asyncio.gather(
                *(
                    self._propose(
                        ProposalContext(q, parent, t, rng, attempt=r, wrong=w, wrongs=wrongs)
                    )
                    for (t, w), rng in zip(targets, rngs, strict=True)
                )
            )
            batch = []
            for k, (_, wrong), rng, text in zip(ks, targets, rngs, texts, strict=True):
                child = self._compose(parent, k, wrong, rng, text)
                if child.status == ns.OPEN:
                    if child.question in seen:
                        child.status = ns.DUPLICATE
                    seen.add(child.question)
                batch.append(child)
            await asyncio.gather(
                *(self._assess(q, parent, c) for c in batch if c.status == ns.OPEN)
            )
            children += batch
            if sum(c.status == ns.GOOD for c in children) >= wanted:
                break
        return children

    async def _targets(self, q: Question, parent: Node) -> list[tuple[int, str]] | Exception:
        """The wrong answers to aim at, as (choice index or NO_CHOICE, text): every wrong option
        of a multiple-choice node; for a free-form one, the target's own wrong answers on it
        (most frequent first), then the proposer's, up to ``wrong_answers``."""
        key = parent.key
        if self._rewrites:
            # One rewrite, aimed at no wrong answer in particular.
            return [(parent.wrong_indices[0] if key is None else NO_CHOICE, "")]
        if key is None:
            return [(i, parent.choices[i]) for i in parent.wrong_indices]
        picked: dict[str, str] = {}
        counts: dict[str, int] = {}
        for a in parent.outputs.get("answers") or []:
            text = a.get("answer")
            if text and not key.is_right(text):
                canon = key.canonical(text)
                picked.setdefault(canon, text)
                counts[canon] = counts.get(canon, 0) + 1
        own = sorted(picked, key=lambda c: -counts[c])[: self.wrong_answers]
        chosen = [picked[c] for c in own]
        suggest = getattr(self.proposer, "wrong_answers", None)
        if len(chosen) < self.wrong_answers and suggest is not None:
            ctx = ProposalContext(q, parent, NO_CHOICE, parent.rng(self.seed, q.id, "wrong"))
            try:
                proposed = await suggest(ctx, self.wrong_answers)
            except STOPS_RUN:
                raise
            except ModelError as exc:
                return exc
            for text in proposed:
                canon = key.canonical(text)
                if len(chosen) < self.wrong_answers and canon not in own and not key.is_right(text):
                    own.append(canon)
                    chosen.append(text)
        return [(NO_CHOICE, w) for w in chosen]

    async def _propose(self, ctx: ProposalContext) -> str | Exception:
        try:
            return await self.proposer.propose(ctx)
        except STOPS_RUN:
            raise
        except ModelError as exc:
            return exc

    def _compose(
        self, parent: Node, k: int, wrong: str | None, rng: Any, text: str | Exception
    ) -> Node:
        child = Node(
            path=f"{parent.path}.{k}",
            parent_path=parent.path,
            depth=parent.depth + 1,
            question=parent.question,
            choices=parent.choices,
            answer=parent.answer,
            target_option=wrong,
            task=parent.task,
            references=parent.references,
        )
        if isinstance(text, Exception):
            child.status = ns.ERROR
            child.outputs["error"] = str(text)
            return child
        if not text:
            child.status = ns.REJECTED
            child.verdicts["proposer"] = {"passed": False, "reason": "empty proposal"}
            return child
        child.distraction = text
        if self._rewrites:
            child.placement, child.question, child.target_option = "rewrite", text, None
        else:
            child.placement = rng.choice(("prefix", "suffix"))
            child.question = (
                f"{text} {parent.question}"
                if child.placement == "prefix"
                else f"{parent.question} {text}"
            )
        if parent.choices and self.choice_order == "shuffle":
            order = list(range(len(parent.choices)))
            rng.shuffle(order)
            child.choices = tuple(parent.choices[i] for i in order)
            child.answer = order.index(parent.answer)
        return child

    async def _assess(self, q: Question, parent: Node, child: Node) -> None:
        first, last = self.constraints, []
        if self.judge_last:
            first = [c for c in self.constraints if not c.calls_model]
            last = [c for c in self.constraints if c.calls_model]
        try:
            if not await self._check(q, parent, child, first):
                return
            res: GoalResult = await self.goal.evaluate(child)
            child.score, child.outputs = res.score, res.to_outputs()
            fooled = False
            if res.candidate:
                # A candidate: it counts only if the target also fails it under the protocol.
                outcome = await self.goal.verify(child, res)
                child.outputs["verify"] = outcome.to_dict()
                child.verified = fooled = outcome.fooled
            if fooled and not await self._check(q, parent, child, last):
                return
        except STOPS_RUN:
            raise
        except ModelError as exc:
            child.status = ns.ERROR
            child.outputs["error"] = str(exc)
            return
        if not fooled:
            for c in last:
                child.verdicts[c.name] = {"passed": None, "reason": DEFERRED}
        child.status = ns.GOOD if fooled else ns.OPEN

    async def _verify_deferred(self, q: Question, node: Node, nodes: list[Node]) -> bool:
        """Run the checks ``judge_last`` put off on ``node``; False if it is invalid or failed."""
        pending = [
            c
            for c in self.constraints
            # A check put off is the one verdict that is neither passed nor failed.
            if c.name in node.verdicts and node.verdicts[c.name].get("passed") is None
        ]
        if not pending:
            return True
        parent = next((n for n in nodes if n.path == node.parent_path), node)
        try:
            return await self._check(q, parent, node, pending)
        except STOPS_RUN:
            raise
        except ModelError as exc:
            node.status = ns.ERROR
            node.outputs["error"] = str(exc)
            return False

    async def _check(
        self, q: Question, parent: Node, child: Node, constraints: list[Constraint]
    ) -> bool:
        for c in constraints:
            verdict = await c.check(q, parent, child)
            child.verdicts[c.name] = verdict.to_dict()
            if not verdict.passed:
                child.status = ns.REJECTED
                return False
        return True


def summarize_nodes(nodes: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n["status"]] = counts.get(n["status"], 0) + 1
    return counts
