"""Parts declare their own options (defaults, help, allowed values) and the roles of the models
they call; a spec (``--constraint similarity:floor=0.6``) and a config file set them, the old
settings (``--similarity-floor``) are shorthands that write into them, and `cdv parts` lists
them. A plugin constraint that calls a model under its own role needs no SearchConfig field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from cdvkit.allowed import SettingError
from cdvkit.cli.app import app
from cdvkit.data.question import Question
from cdvkit.models.client import RoleClient
from cdvkit.models.scripted import REGISTRY
from cdvkit.registry import PartError, Registry, option
from cdvkit.search.build import constraint_specs, part_options
from cdvkit.search.config import SearchConfig
from cdvkit.search.constraints import CONSTRAINTS, LengthRatio, Verdict
from cdvkit.search.context import BuildContext
from cdvkit.search.proposers import PROPOSERS, LLMProposer
from cdvkit.store import RunStore
from scripted_helpers import MARK, marking_proposer, oracle_responder, scripted, write_questions

runner = CliRunner()

QUESTIONS = [
    Question("0", "What color is fresh snow?", ("white", "blue", "red"), 0),
    Question("1", "How many legs does a dog have?", ("two", "four", "six"), 1),
]


def one_line(text: str) -> str:
    return " ".join(text.split())


def built(cfg: SearchConfig, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Each part of ``kind`` the run builds, with the options it is built with."""
    if kind == "proposer":
        from cdvkit.search.build import proposer_spec

        name, given = proposer_spec(cfg)
        return [(name, part_options(cfg, PROPOSERS, name, given))]
    return [(n, part_options(cfg, CONSTRAINTS, n, o)) for n, o in constraint_specs(cfg)]


# --- a spec sets a built-in part's options; the old settings are shorthands --------------------
def test_a_spec_sets_the_options_of_the_constraint_the_run_applies() -> None:
    cfg = SearchConfig.from_sources(
        constraints=["similarity:floor=0.6", "length:max_ratio=5"],
        proposer="llm:model=scripted/p,temperature=0.9",
    )
    # One similarity and one length check, set by the specs: not a second one of each.
    assert built(cfg, "constraint") == [
        ("length", {"max_ratio": 5}),
        ("leak", {}),
        ("similarity", {"floor": 0.6}),
    ]
    assert built(cfg, "proposer") == [
        ("llm", {"model": "scripted/p", "temperature": 0.9, "batch": True, "prompt": None})
    ]


def test_the_old_settings_write_into_the_part_options_and_a_spec_wins() -> None:
    cfg = SearchConfig.from_sources(
        length_ratio=3.0,
        similarity_floor=0.7,
        proposer="scripted/p",
        proposer_temperature=1.1,
        proposer_batch=False,
    )
    assert dict(built(cfg, "constraint")) == {
        "length": {"max_ratio": 3.0},
        "leak": {},
        "similarity": {"floor": 0.7},
    }
    assert built(cfg, "proposer")[0][1] | {"prompt": None} == {
        "model": "scripted/p", "temperature": 1.1, "batch": False, "prompt": None,
    }  # fmt: skip
    over = SearchConfig.from_sources(similarity_floor=0.7, constraints=["similarity:floor=0.55"])
    assert dict(built(over, "constraint"))["similarity"] == {"floor": 0.55}
    # The rewrite baselines' temperature too; 0 still leaves the similarity check out.
    base = SearchConfig.from_sources(
        proposer="background:model=scripted/p", proposer_temperature=0.2, similarity_floor=0
    )
    assert built(base, "proposer") == [("background", {"model": "scripted/p", "temperature": 0.2})]
    assert [n for n, _ in built(base, "constraint")] == ["leak"]


def test_the_shorthands_keep_the_defaults_stored_runs_hold() -> None:
    # The keys and values a stored run recorded: a resume compares them, so they must not move.
    stored = SearchConfig().to_dict()
    assert {k: stored[k] for k in ("length_ratio", "similarity_floor", "proposer_temperature")} == {
        "length_ratio": 10.0, "similarity_floor": 0.5, "proposer_temperature": 0.7,
    }  # fmt: skip
    assert stored["proposer_batch"] is True and stored["leak_check"] is True
    assert SearchConfig().differences({**stored, "role": {}}) == []


async def test_built_parts_ask_as_before() -> None:
    # The llm proposer built from its declared defaults sends what it always sent (same cache
    # keys): temperature 0.7, one batched call per node, the standard template.
    cfg = SearchConfig.from_sources(proposer="scripted/p", similarity_floor=0)
    clients: dict[str, RoleClient] = {}

    def client(role: str, spec: str) -> RoleClient:
        return clients.setdefault(role, RoleClient(scripted("p", marking_proposer), role))

    ctx = BuildContext(cfg, client)
    name, opts = built(cfg, "proposer")[0]
    made = PROPOSERS.get(name)(ctx, **opts)
    plain = LLMProposer(client("proposer", "scripted/p"), temperature=0.7, batch=True)
    assert isinstance(made, LLMProposer)
    assert (made.temperature, made.batch, made.prompt) == (
        plain.temperature,
        plain.batch,
        "standard",
    )
    length = CONSTRAINTS.get("length")(ctx, **dict(built(cfg, "constraint"))["length"])
    assert isinstance(length, LengthRatio) and length.max_ratio == 10.0


# --- refusals: one line naming the part, the option and what it takes --------------------------
@pytest.mark.parametrize(
    "spec,line",
    [
        ("similarity:flor=0.6",
         "constraint 'similarity' takes no option 'flor' (its options: floor)"),
        ("similarity:floor=2", "constraint similarity:floor must be in [0, 1), not 2"),
        ("length:max_ratio=1", "constraint length:max_ratio must be above 1, not 1 (a child is"),
        ("leak:strict=true", "constraint 'leak' takes no option 'strict' (it takes none)"),
        ("judge:retries=zero", "constraint judge:retries must be a whole number of at least 1"),
    ],
)  # fmt: skip
def test_a_bad_constraint_option_is_one_line(spec: str, line: str, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["generate", "--constraint", spec, "--run-dir", str(tmp_path / "r"), "--limit", "1"]
    )
    assert res.exit_code == 2
    assert line in one_line(res.output), res.output
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_a_bad_proposer_option_is_one_line(tmp_path: Path) -> None:
    for spec, line in [
        ("llm:temperature=0.9", "proposer 'llm' needs model: llm:model=..."),
        ("llm:model=scripted/p,temperature=3", "proposer llm:temperature must be between 0 and 2"),
        ("template:word=hi", "proposer 'template' takes no option 'word' (it takes none)"),
    ]:
        res = runner.invoke(app, ["generate", "--proposer", spec, "--run-dir", str(tmp_path / "r")])
        assert res.exit_code == 2 and line in one_line(res.output), (spec, res.output)


def test_a_config_file_sets_part_options_and_is_checked_too(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        'constraints = ["similarity:floor=0.6", "length:max_ratio=5"]\n'
        'proposer = "llm:model=scripted/p,temperature=0.9"\n'
    )
    cfg = SearchConfig.from_sources(good)
    assert dict(built(cfg, "constraint"))["similarity"] == {"floor": 0.6}
    assert built(cfg, "proposer")[0][1]["temperature"] == 0.9
    bad = tmp_path / "bad.toml"
    bad.write_text('[generate]\nconstraints = ["length:max_ratio=0.5"]\n')
    with pytest.raises(SettingError, match=r"constraint length:max_ratio must be above 1, not 0.5"):
        SearchConfig.from_sources(bad)


# --- declarations are checked when a part is registered ---------------------------------------
def test_a_declaration_that_cannot_hold_is_refused_at_registration() -> None:
    reg: Registry[Any] = Registry("widget", "cdvkit.test-widgets")
    with pytest.raises(
        PartError, match=r"widget 'w': the default of option 'size' must be at least 1, not 0"
    ):
        reg.add("w", lambda: None, options={"size": option(0, "how big", min=1)})
    with pytest.raises(PartError, match=r"option 'size' has no help"):
        reg.add("w", lambda: None, options={"size": option(1, " ")})
    with pytest.raises(PartError, match=r"option 'size' is a int"):
        reg.add("w", lambda: None, options={"size": 3})
    with pytest.raises(PartError, match=r"roles must be a tuple of names"):
        reg.add("w", lambda: None, roles=("no spaces please",))

    class Declared:
        OPTIONS: ClassVar = {"size": option(2, "how big", min=1)}
        ROLES = ("sizer",)

    reg.add("d", Declared)  # declared on the part itself, as garak's DEFAULT_PARAMS
    entry = reg.entry("d")
    assert entry.roles == ("sizer",) and reg.settings("d", {}) == {"size": 2}
    assert reg.settings("d", {"size": 5}) == {"size": 5}
    reg.add("loose", lambda **kw: None)  # declares nothing: options pass unchecked, as before
    assert reg.settings("loose", {"anything": 1}) == {"anything": 1}


# --- a plugin constraint that calls a model under its own role ---------------------------------
class Critic:
    """Asks a critic model whether a distraction reads naturally; a strict critic also refuses
    one that mentions the word 'often'."""

    name = "critic"
    calls_model = True

    def __init__(self, client: RoleClient, strict: bool) -> None:
        self.client, self.strict = client, strict

    async def check(self, original: Any, parent: Any, child: Any) -> Verdict:
        from cdvkit.models.base import GenerateRequest

        req = GenerateRequest.make(
            [{"role": "user", "content": f"Natural? {child.distraction}"}], max_tokens=8
        )
        reply = await self.client.complete(req)
        ok = reply.strip() == "yes" and not (self.strict and "often" in (child.distraction or ""))
        return Verdict(ok, "" if ok else "the critic refused it")


CRITIC_OPTIONS = {"strict": option(False, "Also refuse a distraction saying 'often'")}
CRITIC_CALLS: list[str] = []


@pytest.fixture
def critic(tmp_path: Path):
    def build(ctx: BuildContext, *, strict: bool = False) -> Critic:
        return Critic(ctx.role("critic"), strict)

    def reply(req: Any, sample: int) -> str:
        CRITIC_CALLS.append(req.messages[-1][1])
        return "yes"

    CONSTRAINTS.add(
        "critic", build, help="a critic model finds the distraction natural",
        options=CRITIC_OPTIONS, roles=("critic",),
    )  # fmt: skip
    REGISTRY["po-critic"] = reply
    REGISTRY["po-oracle"] = oracle_responder(QUESTIONS)
    REGISTRY["po-prop"] = marking_proposer
    CRITIC_CALLS.clear()
    yield write_questions(tmp_path / "q.jsonl", QUESTIONS)
    CONSTRAINTS.remove("critic")


def critic_args(data: Path, run: Path, *extra: str) -> list[str]:
    return ["generate", "--data", str(data), "--target", "scripted/po-oracle",
            "--proposer", "scripted/po-prop", "--similarity-floor", "0", "--samples", "2",
            "--run-dir", str(run), "--json", *extra]  # fmt: skip


def test_a_plugin_constraint_calls_its_own_role(critic: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        critic_args(critic, run, "--constraint", "critic", "--role", "critic=scripted/po-critic",
                    "--set", "roles.critic.concurrency=2"),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["with_example"] == 2
    # Paid under its own role, once per child it was asked about (judge_last: examples first).
    assert summary["by_role"]["critic"]["calls"] == len(CRITIC_CALLS) > 0
    assert all(c.startswith(f"Natural? {MARK}") for c in CRITIC_CALLS)
    with RunStore(run, readonly=True, lock=False) as store:
        cfg = store.get_config()
        judged = [n for n in store.nodes() if "critic" in n["verdicts"]]
    assert cfg["role"] == {"critic": "scripted/po-critic"} and cfg["roles"]["critic"] == {
        "concurrency": 2
    }
    assert judged and all(n["verdicts"]["critic"]["passed"] for n in judged)
    # Resumed as it began: nothing asked again.
    before = len(CRITIC_CALLS)
    again = runner.invoke(
        app,
        critic_args(critic, run, "--constraint", "critic", "--role", "critic=scripted/po-critic"),
    )
    assert again.exit_code == 0, again.output
    assert len(CRITIC_CALLS) == before


def test_a_plugin_part_option_and_role_from_a_config_file(critic: Path, tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(
        '[generate]\nconstraints = ["critic:strict=true"]\nrole = {critic = "scripted/po-critic"}\n'
        "\n[roles.critic]\nconcurrency = 3\n"
    )
    res = runner.invoke(app, critic_args(critic, tmp_path / "run", "--config", str(conf)))
    assert res.exit_code == 0, res.output
    # strict: the proposer's 'people often talk about' sentences are all refused.
    assert json.loads(res.stdout)["with_example"] == 0 and CRITIC_CALLS


@pytest.mark.parametrize(
    "extra,line",
    [
        (["--constraint", "critic"],
         "constraint 'critic' calls a critic model: pass --role critic=provider/model"),
        (["--role", "critic=scripted/po-critic"],
         "--role critic: no part of this run calls a critic model (roles called: none)"),
        (["--constraint", "critic", "--role", "critic"],
         "--role 'critic': not ROLE=provider/model"),
        (["--constraint", "critic:strict=maybe", "--role", "critic=scripted/po-critic"],
         "constraint critic:strict must be true or false, not 'maybe'"),
        (["--constraint", "critic", "--role", "critic=scripted/po-critic",
          "--set", "roles.critic.bogus=1"],
         "roles.critic.bogus: not an option of scripted/po-critic"),
    ],
)  # fmt: skip
def test_a_plugin_role_left_out_or_misspelt_is_one_line(
    critic: Path, tmp_path: Path, extra: list[str], line: str
) -> None:
    res = runner.invoke(app, critic_args(critic, tmp_path / "run", *extra))
    assert res.exit_code == 2 and line in one_line(res.output), res.output
    assert not CRITIC_CALLS


# --- cdv parts lists each part's options --------------------------------------------------------
def test_cdv_parts_lists_options_with_defaults_and_help(critic: Path) -> None:
    rows = json.loads(runner.invoke(app, ["parts", "--json"]).stdout)
    by_name = {(r["kind"], r["name"]): r for r in rows}
    sim = by_name[("constraint", "similarity")]
    assert sim["options"]["floor"]["default"] == 0.5 and "floor=0.5" in sim["about"]
    assert sim["options"]["floor"]["takes"] == "a finite number in [0, 1)"
    llm = by_name[("proposer", "llm")]["options"]
    assert llm["temperature"]["default"] == 0.7 and llm["model"]["required"]
    assert by_name[("constraint", "critic")]["roles"] == ["critic"]
    one = runner.invoke(app, ["parts", "critic"])
    out = one_line(one.output)
    assert one.exit_code == 0 and "--role critic=provider/model" in out
    assert "strict" in out and "Also refuse a distraction saying 'often'" in out
    assert runner.invoke(app, ["parts", "nosuch"]).exit_code == 2


def test_generate_help_names_the_shorthands() -> None:
    help_text = runner.invoke(app, ["generate", "--help"]).output
    out = one_line(help_text.replace("│", " "))  # the panels' borders, between wrapped lines
    assert "floor; 0 turns it off (shorthand for --constraint similarity:floor=V)" in out
    assert "(shorthand for --proposer llm:temperature=V)" in out
    assert "--role ROLE=MODEL ROLE=provider/model for a role a part calls" in out
