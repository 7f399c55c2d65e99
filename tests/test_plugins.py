"""A new proposer, constraint and model provider, defined here and nowhere else, registered by
name and used by `cdv generate` by name: adding a part is one module, no edit to cdvkit."""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from cdvkit import registry as registry_module
from cdvkit.cli.app import app
from cdvkit.data import Dataset
from cdvkit.data.question import LETTERS, Question
from cdvkit.executors import LocalExecutor, executor_from_options, make_executor
from cdvkit.export import FormatOption
from cdvkit.models.base import Completion, GenerateRequest, Model, Usage
from cdvkit.models.registry import PROVIDERS, provider
from cdvkit.registry import Registry, parse_spec
from cdvkit.search.constraints import CONSTRAINTS, Verdict
from cdvkit.search.proposers import PROPOSERS, ProposalContext
from cdvkit.search.strategies import STRATEGIES
from cdvkit.store import RunStore
from cdvkit.tasks import load_questions

MARK = "PSST"


class ShoutProposer:
    name = "shout"

    def __init__(self, word: str) -> None:
        self.word = word

    async def propose(self, ctx: ProposalContext) -> str:
        return f"{self.word}: everyone keeps saying {ctx.node.choices[ctx.target]}."


class NoDigits:
    """Drops any distraction with a digit in it; calls no model."""

    name = "no-digits"
    calls_model = False

    async def check(self, original: Any, parent: Any, child: Any) -> Verdict:
        ok = not any(ch.isdigit() for ch in child.distraction or "")
        return Verdict(ok, "" if ok else "has a digit")


class Gullible(Model):
    """Right on a plain question, fooled by any sentence carrying the mark."""

    provider = "gullible"

    def __init__(self, spec: str, name: str, **options: Any) -> None:
        options.pop("base_url", None)
        super().__init__(spec, **options)

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        mcq = request.mcq
        assert mcq is not None
        right = next(i for i, c in enumerate(mcq.choices) if c.startswith("right"))
        pick = (right + 1) % len(mcq.choices) if MARK in mcq.question else right
        return Completion([f"Thinking... Answer: {LETTERS[pick]}"] * n, Usage(10, 5))


@pytest.fixture
def parts():
    PROPOSERS.add("shout", lambda ctx, word="HEY": ShoutProposer(word), help="test proposer")
    CONSTRAINTS.add("no-digits", lambda ctx: NoDigits(), help="test constraint")
    provider("gullible", description="test provider")(Gullible)
    yield
    PROPOSERS.remove("shout")
    CONSTRAINTS.remove("no-digits")
    PROVIDERS.remove("gullible")


def test_parts_defined_in_a_test_module_run_by_name(parts, tmp_path: Path) -> None:
    data = tmp_path / "q.jsonl"
    rows = [
        {"question": f"Question {w}?", "choices": ["right", "wrong a", "wrong b"], "answer": 0}
        for w in ("one", "two", "three")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(
        app,
        ["generate", "--data", str(data), "--target", "gullible/any",
         "--proposer", f"shout:word={MARK}", "--constraint", "no-digits",
         "--similarity-floor", "0", "--run-dir", str(tmp_path / "run"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["with_example"] == 3
    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        examples = list(store.examples())
        nodes = store.nodes()
    assert examples and all(e["distraction"].startswith(f"{MARK}:") for e in examples)
    # The constraint was asked about every child, under its own name.
    children = [n for n in nodes if n["parent_path"] is not None]
    assert children and all(n["verdicts"]["no-digits"]["passed"] for n in children)
    # And `cdv parts` lists them with the built-in ones.
    listed = json.loads(CliRunner().invoke(app, ["parts", "--json"]).stdout)
    names = {(r["kind"], r["name"]) for r in listed}
    assert {("proposer", "shout"), ("constraint", "no-digits"), ("provider", "gullible")} <= names
    assert ("proposer", "llm") in names and ("export format", "lm-eval") in names


def test_a_part_option_that_does_not_exist_is_one_line(parts, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["generate", "--data", "sample", "--proposer", "nosuch:x=1",
         "--run-dir", str(tmp_path / "run")],
    )  # fmt: skip
    assert res.exit_code == 2 and "registered proposer" in res.output
    assert not (tmp_path / "run").exists()
    res = CliRunner().invoke(
        app,
        ["generate", "--data", "sample", "--constraint", "nosuch",
         "--run-dir", str(tmp_path / "run")],
    )  # fmt: skip
    assert res.exit_code == 2 and "--constraint 'nosuch': unknown" in " ".join(res.output.split())


def test_specs_read_options_as_numbers_booleans_or_text() -> None:
    assert parse_spec("llm:model=openai/gpt-4o,temperature=0.9,batch=false") == (
        "llm",
        {"model": "openai/gpt-4o", "temperature": 0.9, "batch": False},
    )
    assert parse_spec("judge:model=ollama/llama3.1:8b") == (
        "judge",
        {"model": "ollama/llama3.1:8b"},
    )
    assert parse_spec("leak") == ("leak", {})
    with pytest.raises(ValueError, match="not key=value"):
        parse_spec("judge:openai/gpt-4o")


def test_other_packages_add_parts_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed package declares [project.entry-points."cdvkit.things"] shout = "mod:factory".
    seen: list[str] = []
    fake = EntryPoint("shout", "json:dumps", "cdvkit.things")

    def entry_points(*, group: str) -> list[EntryPoint]:
        seen.append(group)
        return [fake] if group == "cdvkit.things" else []

    monkeypatch.setattr(registry_module, "entry_points", entry_points)
    things: Registry[Any] = Registry("thing", "cdvkit.things")
    assert things.get("shout") is json.dumps and seen == ["cdvkit.things"]
    with pytest.raises(ValueError, match=r"unknown thing 'nope' \(registered: shout\)"):
        things.get("nope")


def test_a_plugin_that_fails_to_load_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint("bad", "no_such_module_anywhere:thing", "cdvkit.things2")
    monkeypatch.setattr(
        registry_module,
        "entry_points",
        lambda *, group: [broken] if group == "cdvkit.things2" else [],
    )
    things: Registry[Any] = Registry("thing", "cdvkit.things2")
    things.add("good", json.dumps)
    with pytest.warns(UserWarning, match="thing entry point 'bad'.*failed to load"):
        assert list(things) == ["good"]
    # Asking for it by name says why it is not there, not just "unknown".
    with pytest.raises(ValueError, match=r"in group cdvkit.things2 failed to load.*no_such_module"):
        things.get("bad")


# --- entry points are checked for the kind of object they name ---------------------------------
@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``installed({group: [EntryPoint, ...]})``: entry points as an installed package would
    declare them, seen by the real registries afresh; what they add is removed afterwards.
    Plugin modules may be written to ``tmp_path`` (on sys.path) and are imported fresh."""
    from cdvkit.parts import part_kinds

    registries = [k.registry for k in part_kinds()]
    before = {id(r): set(r) for r in registries}
    declared: dict[str, list[EntryPoint]] = {}
    monkeypatch.setattr(registry_module, "entry_points", lambda *, group: declared.get(group, []))
    monkeypatch.syspath_prepend(str(tmp_path))
    for r in registries:
        monkeypatch.setattr(r, "_plugins_loaded", False)
        monkeypatch.setattr(r, "_problems", {})

    def install(groups: dict[str, list[EntryPoint]]) -> None:
        declared.update(groups)

    yield install
    for r in registries:
        for name in set(r._entries) - before[id(r)]:
            r.remove(name)
    # The next test's plugin modules are imported afresh, as in a new process.
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_an_entry_point_naming_a_model_subclass_is_a_provider(installed, tmp_path: Path) -> None:
    # The bug: the class itself was stored as the provider, and building a model with it
    # failed with AttributeError: 'type' object has no attribute 'factory'.
    installed({"cdvkit.providers": [EntryPoint("gull", "test_plugins:Gullible", "x")]})
    from cdvkit.models.registry import load_model

    model = load_model("gull/any", concurrency=3)
    assert isinstance(model, Gullible) and model.name == "gull/any" and model.concurrency == 3
    assert PROVIDERS.get("gull").description.startswith("Right on a plain question")
    listed = json.loads(CliRunner().invoke(app, ["parts", "--json"]).stdout)
    row = next(r for r in listed if r["name"] == "gull")
    assert row["kind"] == "provider" and row["about"].startswith("Right on a plain question")
    # And a run uses it by name, with no line of cdvkit changed.
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "Q?", "choices": ["right", "wrong"], "answer": 0}))
    res = CliRunner().invoke(
        app,
        ["generate", "--data", str(data), "--target", "gull/any", "--proposer", "template",
         "--similarity-floor", "0", "--run-dir", str(tmp_path / "run"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["questions"] == 1


class NotAModel:
    """Has nothing of a Model."""


class HalfModel(Model):
    """A Model whose constructor takes only the base's (name): it cannot be built from a spec."""

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        return Completion(["Answer: A"] * n, Usage(1, 1))


@pytest.mark.parametrize(
    ("group", "target", "expected"),
    [
        ("cdvkit.providers", "test_plugins:NotAModel", "expected a ProviderInfo"),
        ("cdvkit.providers", "test_plugins:HalfModel", r"taking \(spec, name"),
        ("cdvkit.providers", "test_plugins:ShoutProposer", "got the class test_plugins.Shout"),
        ("cdvkit.proposers", "test_plugins:Gullible", r"which has no propose\(\)"),
        ("cdvkit.proposers", "test_plugins:MARK", "expected a proposer factory"),
        ("cdvkit.constraints", "test_plugins:ShoutProposer", r"which has no check\(\)"),
        ("cdvkit.strategies", "test_plugins:NoDigits", r"which has no push\(\)"),
        ("cdvkit.exporters", "json:dumps", "expected an Exporter"),
        ("cdvkit.datasets", "json:dumps", "expected a cdvkit.data.Dataset"),
        ("cdvkit.defenses", "json:dumps", "expected the text of a defence"),
        ("cdvkit.executors", "test_plugins:NoDigits", r"which has no map\(\)"),
        ("cdvkit.recipes", "test_plugins:MARK", "expected a recipe"),
    ],
)
def test_an_entry_point_of_the_wrong_kind_is_one_line(installed, group, target, expected) -> None:
    from cdvkit.parts import part_kinds

    registry = next(k.registry for k in part_kinds() if k.registry.group == group)
    installed({group: [EntryPoint("odd", target, group)]})
    with pytest.warns(
        UserWarning, match=re.escape(f"entry point 'odd' ({target}) in group {group}")
    ):
        assert "odd" not in registry
    with pytest.raises(ValueError) as info:
        registry.get("odd")
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{registry.kind} entry point 'odd'")
    assert group in line and target in line
    assert re.search(expected, line), line


def test_a_wrong_provider_entry_point_is_named_where_the_model_is_asked_for(installed) -> None:
    group = "cdvkit.providers"
    installed({group: [EntryPoint("oops", "test_plugins:NotAModel", group)]})
    with pytest.warns(UserWarning):
        res = CliRunner().invoke(app, ["generate", "--data", "sample", "--target", "oops/m"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "entry point 'oops' (test_plugins:NotAModel) in group cdvkit.providers" in res.output


def test_a_plugin_module_is_checked_for_what_it_registers(installed, tmp_path: Path) -> None:
    (tmp_path / "cdv_plug_ok.py").write_text(
        "from cdvkit.search.proposers import PROPOSERS, TemplateProposer\n"
        "PROPOSERS.add('plug-template', lambda ctx: TemplateProposer(), help='from a module')\n"
    )
    (tmp_path / "cdv_plug_empty.py").write_text("X = 1\n")
    (tmp_path / "cdv_plug_bad.py").write_text(
        "from cdvkit.search.proposers import PROPOSERS\nPROPOSERS.add('plug-bad', 'text')\n"
    )
    group = "cdvkit.proposers"
    installed(
        {
            group: [
                EntryPoint("plug", "cdv_plug_ok", group),
                EntryPoint("empty", "cdv_plug_empty", group),
                EntryPoint("bad", "cdv_plug_bad", group),
            ]
        }
    )
    with pytest.warns(UserWarning) as seen:
        assert "plug-template" in PROPOSERS
    lines = [str(w.message) for w in seen]
    assert any("'empty'" in ln and "registered no proposer" in ln for ln in lines), lines
    assert any(
        "'bad'" in ln and "proposer 'plug-bad': expected a proposer factory" in ln for ln in lines
    ), lines
    assert "plug-bad" not in PROPOSERS and "plug" not in PROPOSERS


def test_a_part_of_the_wrong_kind_is_refused_when_registered() -> None:
    with pytest.raises(TypeError, match="strategy 'x': expected a strategy factory"):
        STRATEGIES.add("x", "best-first")
    with pytest.raises(TypeError, match="which cannot be called so"):
        PROPOSERS.add("x", lambda: None)  # a factory takes the BuildContext
    assert "x" not in STRATEGIES and "x" not in PROPOSERS


# --- datasets, executors and export formats from a plugin -------------------------------------
def _trivia_loader(*, split=None, **_: Any) -> list[Question]:
    # A plugin's loader may return bare questions; the split it gets is its own default.
    return [
        Question(id=f"t{i}", question=f"Plugin question {i} ({split})?", choices=("right", "no"),
                 answer=0, source="plug")
        for i in range(3)
    ]  # fmt: skip


PLUG_DATASET = Dataset(
    "plug-bench", "multiple_choice", "a plugin's benchmark", _trivia_loader, "example.org", "dev"
)


def test_a_plugin_dataset_is_listed_and_loaded_by_name(installed) -> None:
    installed({"cdvkit.datasets": [EntryPoint("plug-bench", "test_plugins:PLUG_DATASET", "x")]})
    listed = json.loads(CliRunner().invoke(app, ["datasets", "--json"]).stdout)
    row = next(r for r in listed if r["name"] == "plug-bench")
    assert row == {"name": "plug-bench", "task": "multiple_choice", "source": "example.org",
                   "split": "dev", "about": "a plugin's benchmark"}  # fmt: skip
    assert [r["name"] for r in listed][:2] == ["sample", "mmlu"]  # the built-ins still there
    result = load_questions("Plug_Bench", limit=2)  # any case, - or _
    assert len(result.questions) == 2 and "(dev)" in result.questions[0].question
    assert "(test)" in load_questions("plug-bench", split="test").questions[0].question
    with pytest.raises(ValueError, match="holds multiple_choice questions, so --task numeric"):
        load_questions("plug-bench", task="numeric")


class InlineExecutor(LocalExecutor):
    """Runs jobs here, as the local executor does, under a name of its own."""

    name = "inline"
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **options: Any) -> None:
        InlineExecutor.made.append(options)


def test_a_plugin_executor_is_made_by_name_with_its_options(installed) -> None:
    installed({"cdvkit.executors": [EntryPoint("inline", "test_plugins:InlineExecutor", "x")]})
    executor = executor_from_options("inline:lanes=2")
    assert isinstance(executor, InlineExecutor) and InlineExecutor.made[-1] == {"lanes": 2}
    assert make_executor("inline").name == "inline"
    with pytest.raises(ValueError, match="need --executor ray"):
        executor_from_options("inline", workers=2)
    with pytest.raises(ValueError, match=r"unknown executor 'nope' \(registered: local, ray, "):
        make_executor("nope")


def _tsv(store: RunStore, *, sep: str = "\t", header: bool = True) -> tuple[str, int]:
    rows = [(e["question_id"], e["distraction"]) for e in store.examples()]
    lines = ([sep.join(("question_id", "distraction"))] if header else []) + [
        sep.join(r) for r in rows
    ]
    return "".join(line + "\n" for line in lines), len(rows)


TSV_OPTIONS = {
    "sep": FormatOption("\t", "the column separator"),
    "header": FormatOption(True, "a first line naming the columns"),
}


@pytest.fixture
def tsv_format(installed, tmp_path: Path) -> Path:
    """A text format registered by a plugin module, and a run with examples to export."""
    from eval_helpers import make_run

    (tmp_path / "cdv_plug_tsv.py").write_text(
        "from cdvkit.export import text_format\n"
        "from test_plugins import TSV_OPTIONS, _tsv\n"
        "text_format('tsv', 'examples.tsv', help='question ids and distractions, tab-separated',"
        " options=TSV_OPTIONS)(_tsv)\n"
    )
    installed({"cdvkit.exporters": [EntryPoint("tsv", "cdv_plug_tsv", "cdvkit.exporters")]})
    return make_run(tmp_path / "run")


def test_a_plugin_export_format_writes_to_stdout_with_its_options(tsv_format: Path) -> None:
    run = tsv_format
    res = CliRunner().invoke(
        app, ["export", str(run), "--format", "tsv:sep=;,header=false", "-o", "-"]
    )
    assert res.exit_code == 0, res.output
    with RunStore(run, lock=False, readonly=True) as store:
        examples = list(store.examples())
    lines = res.stdout.splitlines()
    assert len(lines) == len(examples) > 0 and lines[0].split(";")[0] == examples[0]["question_id"]
    assert f"wrote {len(examples)} examples to stdout" in res.stderr
    # To a file: the default options (a header, tabs), the same words as every format.
    res = CliRunner().invoke(app, ["export", str(run), "--format", "tsv"])
    assert res.exit_code == 0, res.output
    written = (run / "examples.tsv").read_text().splitlines()
    assert written[0] == "question_id\tdistraction" and len(written) == len(examples) + 1
    said = " ".join(res.stdout.split())
    assert f"wrote {len(examples)} examples to {run / 'examples.tsv'}" in said
    # An option it does not take, or a flag of another format's, is one line.
    for args, needle in [
        (["--format", "tsv:width=3"], "export format 'tsv' takes no option 'width'"),
        (["--format", "tsv", "--chat"], "--chat does not apply to --format tsv"),
        (["--format", "tsv:header=maybe"], "tsv:header must be true or false"),
    ]:
        res = CliRunner().invoke(app, ["export", str(run), *args, "-o", "-"])
        assert res.exit_code == 2 and needle in " ".join(res.stderr.split()), res.output
        assert res.stdout == ""


def test_a_plugin_export_format_is_in_the_help_and_the_parts(tsv_format: Path) -> None:
    res = CliRunner().invoke(app, ["export", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    assert "tsv: question ids and distractions, tab-separated (a file, or -o -)" in text
    assert "header=True: a first line naming the columns" in text
    assert "sft: SFT training data" in text and "test_share=0.2" in text  # built-ins too
    listed = json.loads(CliRunner().invoke(app, ["parts", "--json"]).stdout)
    row = next(r for r in listed if r["name"] == "tsv")
    assert row["kind"] == "export format" and "options: sep='\\t', header=True" in row["about"]
    kinds = {r["kind"] for r in listed}
    assert {"dataset", "executor", "export format", "preset", "defense"} <= kinds
    assert {("export format", "sft"), ("export format", "dpo"), ("executor", "ray")} <= {
        (r["kind"], r["name"]) for r in listed
    }
