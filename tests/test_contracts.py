"""The promises every registered part keeps, run over every part of every kind.

The tests are parametrized by iterating the registries (cdvkit.parts.part_kinds), so a part is
tested the moment it is registered: a new built-in, or a plugin installed through an entry
point. Each kind's promises are what the code that takes it by name relies on; nothing here
needs a network, a key or a GPU (a provider that needs one is checked for what runs offline).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import random
import socket
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub.constants
import pytest
import yaml

from cdvkit.allowed import SettingError, Shape
from cdvkit.data import BUILTINS, LoadResult
from cdvkit.data.question import NO_CHOICE, NUMERIC, Question
from cdvkit.evaluation.defenses import resolve_defense
from cdvkit.executors import Executor
from cdvkit.export import export_run, export_text
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.client import RoleClient
from cdvkit.models.errors import BackendUnavailableError, ModelError
from cdvkit.models.options import MODEL_OPTIONS
from cdvkit.models.registry import load_model, provider_status
from cdvkit.models.scripted import REGISTRY as SCRIPTED
from cdvkit.parts import part_kinds
from cdvkit.prompts import target_messages, target_request
from cdvkit.prompts.defaults import DEFAULTS
from cdvkit.search.config import SearchConfig
from cdvkit.search.constraints import Verdict
from cdvkit.search.context import BuildContext
from cdvkit.search.node import Node
from cdvkit.search.proposers import ProposalContext
from cdvkit.tasks import load_file, row_shapes, shape_names
from eval_helpers import build_run
from loopback_server import Reply, completion, serving
from scripted_helpers import SKY, judge_says, marking_proposer, scripted
from test_data_hub import CSQA_ROW, MMLU_ROW, OBQA_ROW, TQA_ROW
from test_freeform_data import GSM_SOLUTION, TRIVIA_ROW
from test_jobs import Toy, ToySpec

KINDS = {k.kind: k for k in part_kinds()}


def registered(kind: str) -> list[str]:
    return [e.name for e in KINDS[kind].registry.entries()]


def part(kind: str, name: str) -> Any:
    return KINDS[kind].registry.get(name)


def test_every_registry_in_the_package_is_listed_and_tested() -> None:
    # Found in the source, so a registry added anywhere and left out of cdvkit.parts fails here
    # (and would be missing from `cdv parts` and from these tests).
    src = Path(__file__).resolve().parents[1] / "src" / "cdvkit"
    found = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Registry"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    assert found == {k.registry.kind for k in part_kinds()}
    assert all(registered(kind) for kind in KINDS)  # every kind has built-in parts


def test_every_part_has_help() -> None:
    for k in part_kinds():
        for e in k.registry.entries():
            assert e.help.strip(), f"{k.kind} {e.name!r} has no help for cdv parts"


# --- proposers and constraints: built from a BuildContext on scripted clients ------------------
def respond(role: str):
    """One scripted reply per role: a proposer's sentences, a judge that lets a child pass."""
    judge = judge_says(False)

    def reply(req: Any, sample: int) -> str:
        if role == "judge":
            return judge(req, sample)
        try:
            return marking_proposer(req, sample)
        except (IndexError, KeyError):  # not a per-option request: a rewrite
            return "Some context first. " * 3 + req.messages[-1][1].split("\n")[0]

    return reply


class Clients:
    """ctx.client: a scripted client per (role, model), recording what the part asked for."""

    def __init__(self) -> None:
        self.made: dict[tuple[str, str], Any] = {}

    def __call__(self, role: str, spec: str) -> RoleClient:
        if (role, spec) not in self.made:
            self.made[(role, spec)] = scripted(spec.split("/", 1)[1], respond(role))
        return RoleClient(self.made[(role, spec)], role)

    def calls(self) -> int:
        return sum(len(m.calls) for m in self.made.values())


def build(kind: str, name: str) -> tuple[Any, Clients]:
    """The part built as a run builds it, its required options filled: a model is scripted."""
    factory = part(kind, name)
    clients = Clients()
    options: dict[str, Any] = {}
    for p in inspect.signature(factory).parameters.values():
        if p.name == "model":
            options["model"] = f"scripted/{kind}-{name}"
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            pytest.fail(f"{kind} {name!r}: the contract cannot fill its option {p.name!r}")
    ctx = BuildContext(SearchConfig(target="scripted/target", similarity_floor=0), clients)
    return factory(ctx, **options), clients


NUMBER = Question(
    id="eggs", question="How many eggs are in ten boxes of 12?", choices=(), answer=-1,
    source="test", task=NUMERIC, references=("120",),
)  # fmt: skip


def proposal(q: Question, seed: int = 7) -> ProposalContext:
    node = Node.root(q)
    if q.free_form:
        return ProposalContext(q, node, NO_CHOICE, random.Random(seed), wrong="144")
    return ProposalContext(q, node, 1, random.Random(seed), wrong=q.choices[1])


@pytest.mark.parametrize("name", registered("proposer"))
@pytest.mark.parametrize("question", [SKY, NUMBER], ids=["choices", "numeric"])
async def test_a_proposer_writes_text_for_a_node(name: str, question: Question) -> None:
    proposer, clients = build("proposer", name)
    assert isinstance(proposer.name, str) and callable(proposer.propose)
    text = await proposer.propose(proposal(question))
    assert isinstance(text, str)
    if clients.made:  # it asked for a model: through the run's clients, and it called it
        assert clients.calls() >= 1
    else:  # no model to blame: it must write something
        assert text.strip()
    again, _ = build("proposer", name)
    assert await again.propose(proposal(question)) == text  # seeded by the context: repeatable


def child_of(q: Question, distraction: str) -> Node:
    return Node(
        path="r.0", depth=2, question=f"{distraction} {q.question}", choices=q.choices,
        answer=q.answer, parent_path="r", distraction=distraction, placement="before",
        target_option=q.choices[1] if q.choices else "144", task=q.task,
        references=q.references,
    )  # fmt: skip


@pytest.mark.parametrize("name", registered("constraint"))
@pytest.mark.parametrize("question", [SKY, NUMBER], ids=["choices", "numeric"])
async def test_a_constraint_gives_a_verdict(name: str, question: Question) -> None:
    try:
        constraint, clients = build("constraint", name)
    except BackendUnavailableError as exc:  # an optional dependency missing: named, one line
        assert "pip install" in str(exc) and "\n" not in str(exc)
        return
    assert isinstance(constraint.name, str) and isinstance(constraint.calls_model, bool)
    child = child_of(question, "A neighbour keeps talking about the colour of ripe tomatoes.")
    verdict = await constraint.check(question, Node.root(question), child)
    assert isinstance(verdict, Verdict) and isinstance(verdict.passed, bool)
    assert isinstance(verdict.reason, str)
    assert verdict.passed or verdict.reason  # a child dropped is dropped for a reason
    assert verdict.to_dict()["passed"] is verdict.passed  # stored on the node as a dict
    if constraint.calls_model:
        assert clients.calls() >= 1
    assert await constraint.check(question, Node.root(question), child) == verdict


# --- strategies ---------------------------------------------------------------------------------
def tree() -> list[Node]:
    return [
        Node(path=f"r.{i}", depth=2, question=f"q{i}", choices=("a", "b"), answer=0,
             parent_path="r", score=score)
        for i, score in enumerate((0.8, 0.3, 0.6))
    ]  # fmt: skip


def walk(name: str) -> list[str]:
    strategy = part("strategy", name)(k=2.0, n=1.0)
    root = Node.root(SKY)
    root.score = 1.0
    strategy.push(root)
    order, children = [], tree()
    for _ in range(10):  # a strategy may stop early; it never loops forever
        node = strategy.pop()
        if node is None:
            break
        order.append(node.path)
        if node is root:
            for c in children:
                strategy.push(c)
            strategy.expanded(root, children)
        else:
            strategy.expanded(node, [])
    return order


@pytest.mark.parametrize("name", registered("strategy"))
def test_a_strategy_pops_what_was_pushed_and_repeats_itself(name: str) -> None:
    order = walk(name)
    assert order and order[0] == "r"  # the root, the only node pushed, comes first
    assert len(order) == len(set(order)) <= 4  # each node at most once, nothing invented
    assert set(order) <= {"r", "r.0", "r.1", "r.2"}
    assert walk(name) == order  # deterministic
    assert part("strategy", name)(k=2.0, n=1.0).pop() is None  # empty: nothing to expand


# --- providers ------------------------------------------------------------------------------
@pytest.fixture
def loopback() -> Iterator[Any]:
    with serving(lambda seen: Reply(json=completion(["Answer: A"] * seen.n))) as srv:
        yield srv


@pytest.mark.parametrize("name", registered("provider"))
async def test_a_provider_describes_itself_and_builds_offline(name: str, loopback, tmp_path):
    info = part("provider", name)
    assert info.name == name and info.example.startswith(f"{name}/")
    usable, why = provider_status(info)
    assert isinstance(usable, bool) and why.strip()
    known = info.known_options()
    assert set(MODEL_OPTIONS) <= set(known)
    for option in known.values():
        Shape.of(option.hint)  # a type the one check of role options reads
    # Built from a spec with a declared option (and a key and a server where it takes them):
    # a Model, or one of cdvkit's errors saying what is missing; never anything else.
    SCRIPTED["contract"] = lambda req, i: "Answer: A"
    model_name = "contract" if name == "scripted" else str(tmp_path / "no-such-model")
    options: dict[str, Any] = {"concurrency": 3}
    if "api_key" in known:
        options["api_key"] = "sk-contract"
    if info.takes_base_url:
        options |= {"base_url": loopback.url, "max_retries": 0}
    try:
        model = load_model(f"{name}/{model_name}", **options)
    except (BackendUnavailableError, ModelError) as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip()
        return
    finally:
        SCRIPTED.pop("contract", None)
    try:
        assert isinstance(model, Model) and model.name == f"{name}/{model_name}"
        assert model.concurrency == 3
        if name == "scripted" or info.takes_base_url:  # answers offline: ask it
            req = target_request(SKY.question, SKY.choices, temperature=0.0)
            done = await model.generate(req, 2)
            assert done.texts == ["Answer: A", "Answer: A"]
    finally:
        await model.aclose()


# --- export formats -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return asyncio.run(build_run(tmp_path_factory.mktemp("contract") / "run"))


def loads(path: Path) -> int:
    """Parse every JSON, JSONL and YAML file at ``path`` (a file or a folder); how many."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    parsed = 0
    for f in files:
        text = f.read_text(encoding="utf-8") if f.suffix in {".json", ".jsonl", ".yaml"} else None
        if f.suffix == ".json":
            json.loads(text)
        elif f.suffix == ".jsonl":
            [json.loads(line) for line in text.splitlines() if line.strip()]
        elif f.suffix == ".yaml":
            yaml.safe_load(text.replace("!function", ""))  # lm-eval's tag for its hooks
        else:
            continue
        parsed += 1
    return parsed


@pytest.mark.parametrize("name", registered("export format"))
def test_an_export_format_writes_what_loads(name: str, run_dir: Path, tmp_path: Path) -> None:
    exporter = part("export format", name)
    out = tmp_path / ("out" if exporter.folder else f"out{Path(exporter.default_name).suffix}")
    res = export_run(run_dir, name, out)
    assert res.path == out and out.exists() and out.is_dir() == exporter.folder
    assert isinstance(res.count, int) and res.count > 0  # the run has examples
    assert loads(out) >= 1
    lines = exporter.report(res)
    assert lines and all(isinstance(ln, str) for ln in lines) and str(out) in lines[0]
    if exporter.text is not None:  # -o -: the same bytes as the file
        text, count = export_text(run_dir, name)
        assert text == out.read_text(encoding="utf-8") and count == res.count
    # Its options: each has help, its default passes its own check, a stranger is refused.
    for key, option in exporter.options.items():
        assert option.help.strip()
        option.check(f"{name}:{key}", option.default)
    with pytest.raises(SettingError, match="takes no option 'no_such_option'"):
        export_run(run_dir, name, tmp_path / "x", no_such_option=1)
    assert not (tmp_path / "x").exists()


# --- defenses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", registered("defense"))
def test_a_defense_is_text_the_target_is_sent(name: str) -> None:
    text = part("defense", name)
    assert isinstance(text, str) and text == text.strip()
    assert resolve_defense(name).text == text
    system = target_messages(SKY.question, SKY.choices, defense=text)[0]["content"]
    assert text in system
    assert bool(text) == (name != "none")


# --- presets --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", registered("preset"))
def test_a_preset_is_valid_search_settings(name: str) -> None:
    settings = part("preset", name)()
    assert isinstance(settings, dict) and settings
    assert set(settings) <= {f.name for f in fields(SearchConfig)}
    # The settings a run needs besides (the paper's extractor reads every answer).
    cfg = SearchConfig.from_sources(preset=name, target="scripted/t", extractor="scripted/x")
    assert cfg.preset == name
    assert {k: getattr(cfg, k) for k in settings} == settings
    settings["samples"] = -1  # the recipe hands out a fresh dict each time
    assert part("preset", name)() != settings


# --- datasets ---------------------------------------------------------------------------------
# One row of each hub built-in as the hub holds it, read through the real datasets loader.
HUB_ROWS = {
    "mmlu": MMLU_ROW,
    "commonsense_qa": CSQA_ROW,
    "openbookqa": OBQA_ROW,
    "truthfulqa_mc1": TQA_ROW,
    "gsm8k": {"question": "How many eggs are in ten boxes of 108?", "answer": GSM_SOLUTION},
    "trivia_qa": TRIVIA_ROW,
}


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")

    def guard(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a dataset tried to reach the network: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", guard)
    monkeypatch.setattr(socket.socket, "connect", guard)


@pytest.mark.parametrize("name", registered("dataset"))
def test_a_dataset_loads_offline_as_its_shape(name: str, offline, tmp_path: Path) -> None:
    d = part("dataset", name)
    assert d.name == name and d.task in shape_names() and d.description.strip()
    # What every loader is called with; a loader that reads files also takes the task shapes.
    params = inspect.signature(d.loader).parameters
    shapes = {"shapes": {}} if "shapes" in params else {}
    inspect.signature(d.loader).bind(
        split=None, data_dir=None, task=None, skip_invalid=False, strict=False, **shapes
    )
    if name in BUILTINS:
        assert name in HUB_ROWS, f"hub dataset {name!r}: add one of its rows to HUB_ROWS"
        local = tmp_path / f"{name}.jsonl"
        local.write_text(json.dumps(HUB_ROWS[name]) + "\n", encoding="utf-8")
        result = d.load(data_dir=local, shapes=row_shapes())
    else:
        result = d.load(shapes=row_shapes())
    assert isinstance(result, LoadResult) and result.questions
    assert all(isinstance(q, Question) and q.task == d.task for q in result.questions)
    assert len({q.id for q in result.questions}) == len(result.questions)


# --- executors ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", registered("executor"))
def test_an_executor_is_built_by_name_and_maps_jobs(name: str) -> None:
    executor = part("executor", name)()
    assert isinstance(executor, Executor) and isinstance(executor.distributed, bool)
    if executor.distributed:  # runs jobs elsewhere (a cluster): tests/test_ray_executor.py
        return
    spec, ends = ToySpec(), []
    jobs = [Toy("a"), Toy("b")]
    outcome = asyncio.run(
        executor.map(spec, jobs, None, Budget(), concurrency=2, on_end=ends.append)
    )
    assert sorted(e.value for e in ends) == ["A", "B"] and outcome.fatal is None
    assert spec.log[-1] == "closed"


# --- declared options: every part of every kind -------------------------------------------
PARTS = [(k.kind, e.name) for k in part_kinds() for e in k.registry.entries()]


@pytest.mark.parametrize("kind,name", PARTS, ids=[f"{k}-{n}" for k, n in PARTS])
def test_a_parts_declared_options_hold_and_reach_it(kind: str, name: str) -> None:
    # What `cdv parts` lists and a spec is checked against: each option has help and a default
    # its own rule takes (a required one may default to None), the part's factory takes it by
    # name, and the roles it calls are names `--role NAME=provider/model` can give.
    registry = KINDS[kind].registry
    entry = registry.entry(name)
    assert all(isinstance(r, str) and r.isidentifier() for r in entry.roles)
    if entry.options is None:
        return  # declares nothing: its spec's options reach it unchecked
    for key, opt in entry.options.items():
        assert opt.help.strip(), f"{kind} {name}:{key} has no help"
        opt.check(f"{kind} {name}:{key}", opt.default)  # raises SettingError naming it
    if not any(o.required for o in entry.options.values()):
        assert registry.settings(name, {}) == {k: o.default for k, o in entry.options.items()}
    if callable(entry.value) and not isinstance(entry.value, type):
        params = inspect.signature(entry.value).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        assert takes_any or set(entry.options) <= set(params), (kind, name, set(params))


# --- task shapes: each loads its own example row and reads its own answer right ---------------
@pytest.mark.parametrize("name", registered("task shape"))
def test_a_task_shape_loads_its_example_and_reads_its_answer(name: str, tmp_path: Path) -> None:
    shape = part("task shape", name)
    assert shape.name == name and shape.description.strip() and shape.answer_noun.strip()
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps(shape.example) + "\n", encoding="utf-8")
    (q,) = load_file(data, task=name).questions
    assert q.task == name and bool(q.choices) == shape.has_choices
    if shape.infer_rank is not None:  # a shape that takes rows unasked takes its own example
        assert load_file(data).questions[0].task == name
    # Every template a role asks for this shape exists and renders its placeholders.
    for role in ("target", "extractor", "proposer", "judge"):
        template = DEFAULTS[shape.template(role, "paper" if shape.has_choices else "")]
        assert template.system or template.user
    sentence = f"Some say the answer is {q.answer_text}."
    assert shape.leaks(sentence, q) and not shape.leaks("The weather was mild that day.", q)
    assert shape.lm_eval()["output_type"] in ("multiple_choice", "generate_until")
    if not shape.has_choices:
        right = shape.read(f"Let me think.\nAnswer: {q.answer_text}").answer
        assert right is not None and shape.is_right(right, q.references)
        assert not shape.is_right("something else entirely 98765", q.references)
        assert shape.read("").answer is None  # nothing to read is undecided, never a guess
        assert shape.canonical(q.answer_text) == shape.canonical(f" {q.answer_text} ")
