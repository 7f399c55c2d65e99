"""A run for the report's tests: the hand-built WORLD (tests/eval_helpers.py) with nodes that
carry replies, a stacked example scored from probabilities and a judge not asked yet, evaluated
by `cdv evaluate` (cdvkit's own numbers, and again with --preset paper); and a small HTML
reader for the tests that read the page without a browser."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.models.scripted import REGISTRY
from cdvkit.search.engine import DEFERRED
from cdvkit.store import RunStore
from eval_helpers import EVALUATED, WORLD, build_world, register_world, world_responder
from scripted_helpers import MARK

EVAL, TARGET = "scripted/weval", "scripted/wtarget"
# A model name long enough that a table which does not wrap it would overflow the page.
LONG = "scripted/weval-" + "with-a-deliberately-long-name-" * 3 + "end"
# The sentence stacked on w1's example (a second distraction, after the question).
STACKED = "Venus keeps coming up whenever planets are named."
SAMPLED_REPLY = "I weigh the options <b>carefully</b>. Answer: {}"
VERIFY_REPLY = "Probably the one mentioned. Answer: {}"


def _answers(letters: list[str], right: str, reply: str) -> list[dict]:
    return [
        {
            "choice": "ABC".index(x),
            "status": "ok",
            "correct": x == right,
            "reply": reply.format(x),
        }
        for x in letters
    ]


def add_report_nodes(run_dir: Path) -> None:
    """Replies, a stacked example and a deferred judge on top of ``build_world``'s nodes."""
    q = {x.id: x for x in WORLD}
    with RunStore(run_dir) as store:
        nodes = {(n["question_id"], n["path"]): n for n in store.nodes()}
        # w2's example: decided by sampled answers, every reply shown (markup stays text).
        w2 = dict(nodes[("w2", "r.0")])
        assert w2["choices"] == ["ten", "eight", "six"]  # the original's, reversed
        w2.update(
            target_option="ten",
            verdicts={"length": {"passed": True, "reason": "", "score": 1.5}},
            outputs={"mode": "sample", "answers": _answers(["A", "A"], "B", SAMPLED_REPLY)},
        )
        store.save_node("w2", w2)
        # w1: a second sentence stacked after the question, scored from probabilities, with
        # the confirmation's replies; the judge was asked and passed it.
        w1 = q["w1"]
        store.save_node(
            "w1",
            {
                "path": "r.0.0",
                "parent_path": "r.0",
                "depth": 3,
                "question": f"{MARK}: a sentence. {w1.question} {STACKED}",
                "choices": list(reversed(w1.choices)),  # Jupiter, Mars, Venus
                "answer": 1,
                "distraction": STACKED,
                "placement": "suffix",
                "target_option": "Venus",
                "status": "good",
                "rate": 0.1,
                "verified": True,
                "verdicts": {
                    "length": {"passed": True, "reason": "", "score": 2.0},
                    "judge": {"passed": True, "reason": "the answer stays Mars", "score": None},
                },
                "outputs": {
                    "mode": "exact",
                    "answers": [],
                    "probs": [0.05, 0.1, 0.85],
                    "verify": {
                        "correct": False,
                        "accuracy": 0.0,
                        "mode": "sample",
                        "answers": _answers(["C", "C", "C"], "B", VERIFY_REPLY),
                    },
                },
            },
        )
        # w4 (searched, no example): a node the target still answered right, so judge_last
        # never asked the judge about it.
        w4 = q["w4"]
        store.save_node(
            "w4",
            {
                "path": "r.0",
                "parent_path": "r",
                "depth": 2,
                "question": f"{MARK}: tin is soft. {w4.question}",
                "choices": list(w4.choices),
                "answer": w4.answer,
                "distraction": f"{MARK}: tin is soft.",
                "placement": "prefix",
                "target_option": "tin",
                "status": "open",
                "rate": 1.0,
                "verified": None,
                "verdicts": {
                    "length": {"passed": True, "reason": "", "score": 1.4},
                    "judge": {"passed": None, "reason": DEFERRED},
                },
                "outputs": {"mode": "sample", "answers": _answers(["B", "B"], "B", SAMPLED_REPLY)},
            },
        )


def evaluated_world(run_dir: Path, *, paper: bool = True) -> Path:
    """The world with its report nodes, evaluated with three models (one long-named), and with
    --preset paper for one of them when ``paper``."""
    register_world()
    REGISTRY[LONG.split("/", 1)[1]] = world_responder(EVALUATED)
    build_world(run_dir)
    add_report_nodes(run_dir)
    runner = CliRunner()
    runs = [["--models", EVAL, TARGET, LONG]]
    if paper:
        runs.append(["--models", EVAL, "--preset", "paper"])
    for args in runs:
        res = runner.invoke(
            app, ["evaluate", "--run", str(run_dir), *args, "--bootstrap", "200", "--json"]
        )
        assert res.exit_code == 0, res.output
        json.loads(res.stdout)
    return run_dir


# --- reading the page without a browser ---------------------------------------------------------
VOID = {"meta", "br", "input", "img", "hr", "link", "col", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        out = []
        for c in self.children:
            if isinstance(c, Element):
                if (tag is None or c.tag == tag) and (cls is None or cls in c.classes):
                    out.append(c)
                out += c.find_all(tag, cls)
        return out

    def find(self, tag: str | None = None, cls: str | None = None) -> Element:
        found = self.find_all(tag, cls)
        assert found, f"no <{tag} class={cls}> in <{self.tag}>"
        return found[0]

    def by_id(self, ident: str) -> Element:
        found = [e for e in self.find_all() if e.attrs.get("id") == ident]
        assert len(found) == 1, ident
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.at = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        e = Element(tag, {k: v or "" for k, v in attrs}, self.at)
        self.at.children.append(e)
        if tag not in VOID:
            self.at = e

    def handle_endtag(self, tag: str) -> None:
        e: Element | None = self.at
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.at = e.parent

    def handle_data(self, data: str) -> None:
        self.at.children.append(data)


def parse(html: str) -> Element:
    b = _Builder()
    b.feed(html)
    return b.root
