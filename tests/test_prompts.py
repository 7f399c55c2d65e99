"""Prompts as data: a prompts file changes every role's wording and how its reply is read; bad
files are refused in one line before anything is written; `cdv prompts` prints what is in
effect as a file that loads back unchanged."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.data.question import LETTERS
from cdvkit.models.base import GenerateRequest
from cdvkit.models.scripted import REGISTRY
from cdvkit.prompts import PromptsError, PromptSet, load_prompts_file, read_choice_reply
from cdvkit.prompts.defaults import DEFAULTS
from cdvkit.prompts.spec import ReplySpec
from cdvkit.prompts.templates import DEFAULT_PROMPTS, check_overrides
from cdvkit.store import RunStore
from scripted_helpers import SKY, write_questions

runner = CliRunner()

# Every role's wording replaced, and every reply read another way than the defaults read it.
CUSTOM = '''
[target.letter]
system = "TGT-SYS: pick one."
user = """
TGT-USER {question}
{choices_lettered}
Reply as JSON with the key "pick"."""
[target.letter.reply]
format = "json"
key = "pick"
answer = "letter"

[extractor.letter]
system = "EXT-SYS"
user = "EXT-USER {question} {choices_list} {reply}"
[extractor.letter.reply]
prefix = "CHOICE="
answer = "text"

[proposer.one]
system = "PROP-SYS"
user = "PROP-USER {question} / {answer} / {wrong} ({wrong_letter})"
[proposer.one.reply]
prefix = "SENTENCE>>"

[judge.standard]
system = "JUDGE-SYS"
user = "JUDGE-USER {original} || {distracted}"
json_mode = false
[judge.standard.reply]
key = "keeps_answer"
pass_when = "yes"
'''
SEEN: dict[str, list[str]] = {}


def _text(req: GenerateRequest) -> str:
    return "\n".join(c for _, c in req.messages)


def custom_target(req: GenerateRequest, sample: int) -> str:
    text = _text(req)
    SEEN.setdefault("target", []).append(text)
    mcq = req.mcq
    right = mcq.choices.index(SKY.answer_text)
    # Fooled by a distraction: names a wrong letter; the prose around it would mislead any
    # reader that looks for "Answer: X".
    pick = (right + 1) % len(mcq.choices) if "MARKED" in mcq.question else right
    return f'Answer: A seems likely at first. {{"pick": "{LETTERS[pick]}"}}'


def custom_roles(req: GenerateRequest, sample: int) -> str:
    text = _text(req)
    if text.startswith("PROP-SYS"):
        SEEN.setdefault("proposer", []).append(text)
        wrong = re.search(r" / .+? / (.+?) \(", text).group(1)
        return f"Here you go, Answer: B.\nSENTENCE>> MARKED people recall {wrong}."
    if text.startswith("JUDGE-SYS"):
        SEEN.setdefault("judge", []).append(text)
        return '{"keeps_answer": "Yes", "reason": "only colour"}'
    SEEN.setdefault("other", []).append(text)
    return ""


def _run(tmp_path: Path, prompts: Path | None, run: Path, *extra: str):
    REGISTRY["custom-target"] = custom_target
    REGISTRY["custom-roles"] = custom_roles
    data = write_questions(tmp_path / "q.jsonl", [SKY])
    args = [
        "generate", "--data", str(data), "--target", "scripted/custom-target",
        "--proposer", "llm:model=scripted/custom-roles,batch=false",
        "--judge", "scripted/custom-roles", "--no-judge-last",
        "--similarity-floor", "0", "--max-expansions", "1", "--run-dir", str(run), "--json",
    ]  # fmt: skip
    if prompts is not None:
        args += ["--prompts", str(prompts)]
    return runner.invoke(app, [*args, *extra])


def test_a_prompts_file_changes_every_roles_wording_and_reading(tmp_path):
    SEEN.clear()
    file = tmp_path / "p.toml"
    file.write_text(CUSTOM)
    res = _run(tmp_path, file, tmp_path / "run")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    # Three wrong options: three children, each judged valid and each fooling the target.
    assert (summary["originally_correct"], summary["examples"]) == (1, 3)
    assert all(t.startswith("TGT-SYS") and "TGT-USER" in t for t in SEEN["target"])
    assert len(SEEN["proposer"]) == 3 and all("PROP-USER" in t for t in SEEN["proposer"])
    assert len(SEEN["judge"]) == 3 and all("JUDGE-USER" in t for t in SEEN["judge"])
    assert "other" not in SEEN
    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        nodes = store.nodes()
        stored = store.get_config()["prompts"]
    root = next(n for n in nodes if n["parent_path"] is None)
    # Read from the JSON key, not from the misleading "Answer: A" before it.
    assert {a["choice"] for a in root["outputs"]["answers"]} == {0}
    good = [n for n in nodes if n["status"] == "good"]
    assert len(good) == 3
    for n in good:  # the sentence after the prefix, the judge's yes under its own key
        assert n["distraction"].startswith("MARKED people recall ")
        assert n["verdicts"]["judge"]["passed"] is True
        assert all(a["choice"] != n["answer"] for a in n["outputs"]["answers"])
    # The run records the templates it was made with.
    assert stored["target.letter"]["reply"]["key"] == "pick"


def test_the_default_readings_differ_on_the_same_replies():
    """The file's readings matter: cdvkit's default reading of the same replies differs."""
    reply = 'Answer: A seems likely at first. {"pick": "C"}'
    choices = ("blue", "green", "red")
    custom = check_overrides(tomllib.loads(CUSTOM), "x")
    spec = ReplySpec(**custom["target.letter"]["reply"])
    assert read_choice_reply(spec, reply, choices).index == 2
    assert read_choice_reply(DEFAULTS["target.letter"].reply, reply, choices).index != 2
    ext = ReplySpec(**custom["extractor.letter"]["reply"])
    assert read_choice_reply(ext, "I think CHOICE= green", choices).index == 1


def test_resuming_with_other_templates_is_refused(tmp_path):
    file = tmp_path / "p.toml"
    file.write_text(CUSTOM)
    assert _run(tmp_path, file, tmp_path / "run").exit_code == 0
    file.write_text(CUSTOM.replace("TGT-USER", "TGT-USER2"))
    res = _run(tmp_path, file, tmp_path / "run")
    assert res.exit_code == 2
    assert "other settings" in " ".join(res.output.split()) and "prompts" in res.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[jduge.standard]\nuser = "x"\n', "unknown role 'jduge'"),
        ('[judge.fancy]\nuser = "x"\n', "unknown template [judge.fancy]"),
        ('[judge.standard]\nuser = "{original} {answr}"\n', "unknown placeholder {answr}"),
        ('[target.letter]\nuser = "{question"\n', "target.letter"),
        ('[judge.standard]\ncolour = "x"\n', "unknown field 'colour'"),
        ('[judge.standard.reply]\nformat = "yaml"\n', "format must be one of"),
        ('[target.letter]\ntemperature = "hot"\n', "temperature must be a number"),
        ("[judge.standard\n", "not valid TOML"),
    ],
)
def test_a_bad_prompts_file_is_one_line_and_no_run(tmp_path, text, message):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(PromptsError, match=re.escape(message)):
        load_prompts_file(file)
    run = tmp_path / "run"
    res = _run(tmp_path, file, run)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and str(file) in res.output.replace("\n", "")
    assert "Traceback" not in res.output and not run.exists()


def test_cdv_prompts_prints_the_templates_in_effect_as_a_loadable_file(tmp_path):
    res = runner.invoke(app, ["prompts", "--preset", "paper"])
    assert res.exit_code == 0, res.output
    raw = tomllib.loads(res.stdout)
    assert set(raw) == {"target", "extractor", "proposer", "judge"}
    assert set(raw["judge"]) == {"paper"} and set(raw["target"]) == {"paper"}
    file = tmp_path / "printed.toml"
    file.write_text(res.stdout)
    # Passed back unchanged, it changes nothing.
    loaded = load_prompts_file(file)
    assert all(DEFAULT_PROMPTS[name] == DEFAULT_PROMPTS.__class__(loaded)[name] for name in loaded)
    # With a prompts file, its templates are what is printed.
    custom = tmp_path / "p.toml"
    custom.write_text(CUSTOM)
    res = runner.invoke(app, ["prompts", "--prompts", str(custom), "--json"])
    shown = json.loads(res.stdout)
    assert shown["target.letter"]["user"].startswith("TGT-USER")
    assert shown["judge.standard"]["reply"]["pass_when"] == "yes"
    every = json.loads(runner.invoke(app, ["prompts", "--all", "--json"]).stdout)
    assert set(every) == set(DEFAULTS)
    bad = tmp_path / "bad.toml"
    bad.write_text('[target.letter]\nuser = "{nope}"\n')
    res = runner.invoke(app, ["prompts", "--prompts", str(bad)])
    assert res.exit_code == 2 and "unknown placeholder {nope}" in res.output


@pytest.mark.parametrize("user", ["one\x7fline {question}", "two\nlines\x9b[2J {question}"])
def test_control_characters_of_a_prompts_file_are_printed_escaped_and_load_back(tmp_path, user):
    # DEL may not stand raw in TOML, and a terminal acts on C1 controls: both are printed as
    # \\u escapes, and the printed file loads back as the same template.
    custom = tmp_path / "p.toml"
    custom.write_text(f"[target.letter]\nuser = {json.dumps(user)}\n")
    res = runner.invoke(app, ["prompts", "--prompts", str(custom)])
    assert res.exit_code == 0, res.output
    assert not any(ord(c) == 0x7F or 0x80 <= ord(c) <= 0x9F for c in res.stdout)
    printed = tmp_path / "printed.toml"
    printed.write_text(res.stdout)
    assert load_prompts_file(printed)["target.letter"]["user"] == user


def test_max_tokens_per_role_reach_the_requests(tmp_path):
    SEEN.clear()
    sizes: dict[str, set[int]] = {}

    def sized_target(req: GenerateRequest, sample: int) -> str:
        sizes.setdefault("target", set()).add(req.max_tokens)
        return f"Answer: {LETTERS[req.mcq.choices.index(SKY.answer_text)]}"

    def sized_judge(req: GenerateRequest, sample: int) -> str:
        sizes.setdefault("judge", set()).add(req.max_tokens)
        return '{"changes_answer": false}'

    REGISTRY["sized-target"] = sized_target
    REGISTRY["sized-judge"] = sized_judge
    data = write_questions(tmp_path / "q.jsonl", [SKY])
    base = ["generate", "--data", str(data), "--target", "scripted/sized-target",
            "--judge", "scripted/sized-judge", "--no-judge-last", "--similarity-floor", "0",
            "--max-expansions", "1"]  # fmt: skip
    assert runner.invoke(app, [*base, "--run-dir", str(tmp_path / "a")]).exit_code == 0
    assert sizes == {"target": {4096}, "judge": {200}}  # the defaults
    sizes.clear()
    res = runner.invoke(
        app,
        [*base, "--max-tokens", "16000", "--max-tokens", "judge=64", "--run-dir",
         str(tmp_path / "b")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sizes == {"target": {16000}, "judge": {64}}
    res = runner.invoke(app, [*base, "--max-tokens", "jduge=5", "--run-dir", str(tmp_path / "c")])
    assert res.exit_code == 2 and "unknown role 'jduge'" in res.output
    assert not (tmp_path / "c").exists()


async def test_a_prompts_file_changes_the_free_form_roles_too(tmp_path):
    """The free-form target, extractor and grader: their wording and their reading."""
    from cdvkit.data.question import NO_CHOICE, SHORT_ANSWER, Question
    from cdvkit.models.client import RoleClient
    from cdvkit.protocol import Asker, Protocol
    from cdvkit.tasks import AnswerKey
    from scripted_helpers import scripted

    file = tmp_path / "free.toml"
    file.write_text(
        '[target.short_answer]\nsystem = "FREE-SYS"\nuser = "FREE-USER {question}"\n'
        '[target.short_answer.reply]\nprefix = "FINAL:"\n'
        '[grader.free]\nsystem = "GRADE-SYS"\nuser = "GRADE-USER {question} | {answer} | {reply}"\n'
        '[grader.free.reply]\nkey = "verdict"\npass_when = "yes"\n'
    )
    prompts = PromptSet(load_prompts_file(file))
    q = Question("jfk", "Who was shot in Dallas in 1963?", (), NO_CHOICE, task=SHORT_ANSWER,
                 references=("John F. Kennedy",))  # fmt: skip
    seen: dict[str, list[str]] = {}

    def target(req: GenerateRequest, sample: int) -> str:
        seen.setdefault("target", []).append(_text(req))
        # Before the prefix a name the default reader would take; after it, the answer.
        return ["Answer: Lyndon Johnson. FINAL: JFK", "FINAL: Lyndon Johnson"][sample % 2]

    def grader(req: GenerateRequest, sample: int) -> str:
        seen.setdefault("grader", []).append(_text(req))
        return '{"verdict": "Yes"}' if "JFK" in _text(req).split("|")[-1] else '{"verdict": "no"}'

    asker = Asker(
        RoleClient(scripted("ft", target), "target"),
        Protocol(samples=2, prompts=prompts),
        grader=RoleClient(scripted("fg", grader), "grader"),
    )
    out = await asker.ask(q.question, q.choices, q.answer, AnswerKey.of(q))
    assert [a.answer for a in out.answers] == ["JFK", "Lyndon Johnson"]
    assert [a.correct for a in out.answers] == [True, False]
    assert out.answers[0].status == "graded"
    assert all(t.startswith("FREE-SYS") and "FREE-USER" in t for t in seen["target"])
    assert seen["grader"] and all(t.startswith("GRADE-SYS") for t in seen["grader"])
