"""The README.md of an exported lm-eval task folder: how to run it, and which ``cdv evaluate``
number each task reproduces (protocol mode) or what it measures instead (loglik mode)."""

from __future__ import annotations

from dataclasses import dataclass

from cdvkit.data.question import MULTIPLE_CHOICE
from cdvkit.protocol import Protocol
from cdvkit.tasks import shape_of
from cdvkit.version import __version__


@dataclass(frozen=True)
class TaskInfo:
    """One task the export wrote."""

    name: str
    shape: str
    variant: str  # "original" | "distracted"
    docs: int


def protocol_words(protocol: Protocol, shape: str = MULTIPLE_CHOICE) -> str:
    """The protocol in a few words, e.g. "n=5, T=0.01, letter prompt, right if any answer is
    right"."""
    if protocol.scoring == "exact":
        rule = "right unless the most likely choice letter is wrong"
        if protocol.threshold is not None:
            rule += f" and P(correct) < {protocol.threshold:g}"
        return f"exact scoring: the letters' probabilities after 'Answer:', {rule}"
    prompt = f"{protocol.prompt} prompt" if shape_of(shape).has_choices else f"{shape} prompt"
    return (
        f"n={protocol.samples}, T={protocol.temperature:g}, {prompt}, right if any answer is right"
    )


def _what(t: TaskInfo, all_examples: bool) -> str:
    shape = shape_of(t.shape)
    questions = "questions" if shape.has_choices else f"{t.shape.replace('_', ' ')} questions"
    if t.variant == "original":
        return f"the original {questions} that have a CDV example ({t.docs})"
    if all_examples:
        return f"every CDV example of those {questions} ({t.docs})"
    return f"the first CDV example of each of those {questions} ({t.docs})"


def _protocol_text(
    tag: str,
    run: str,
    folder: str,
    tasks: list[TaskInfo],
    protocol: Protocol,
    all_examples: bool,
    cap: int,
) -> list[str]:
    flag = " --all-examples" if all_examples else ""
    several = len({t.shape for t in tasks}) > 1
    lines = [
        "Mode: `protocol` (the default): the run's own protocol, so each task's `acc` "
        "reproduces a `cdv evaluate` number.",
        "",
        "## Tasks",
        "",
    ]
    for t in tasks:
        column = f"`{t.variant}`"
        scope = f", on the {t.shape.replace('_', ' ')} questions" if several else ""
        lines.append(
            f"- `{t.name}`: accuracy on {_what(t, all_examples)} under the protocol "
            f"({protocol_words(protocol, t.shape)}): the {column} column (`overall.{t.variant}` "
            f"with `--json`) of `cdv evaluate --run {run} --models M{flag}`{scope}."
        )
    lines += [
        "",
        "The drop `cdv evaluate` prints is the original task's `acc` minus the distracted "
        "task's. Results are named `acc,protocol` (sampled protocol) or `acc,none` (exact).",
    ]
    if all_examples:
        lines += [
            "",
            "The distracted task averages each question's examples first, then the questions "
            "(as `cdv evaluate --all-examples` does), so lm-eval prints no stderr for it.",
        ]
    lines += [
        "",
        "## Run",
        "",
        "```bash",
        "pip install cdvkit   # utils.py reads every reply with cdvkit's own reader",
        f"lm_eval --include_path {folder} --tasks {tag} --model M --apply_chat_template",
        "```",
        "",
        "## What matches `cdv evaluate`, and what does not",
        "",
        "- The prompt: each document holds the target's system prompt (the task's "
        "`description`) and user message (`doc_to_text`) exactly as cdvkit renders them for "
        "this run. Pass `--apply_chat_template`: the model then gets those two messages (a "
        "chat-completions API model needs it anyway). Without it lm-eval joins them into one "
        "plain text, which is not what cdvkit sends. `--system_instruction` is put before the "
        "system prompt (`cdv evaluate --defense` adds its text after it).",
    ]
    if protocol.scoring == "sample":
        lines += [
            f"- The answers: `repeats: {protocol.samples}` samples per question at temperature "
            f"{protocol.temperature:g}, no stop string, at most the protocol's {cap} tokens each "
            "(`max_gen_toks`; `--gen_kwargs` would override these settings and with them the "
            "protocol). `utils.py` reads each reply as the protocol does (the run's reply "
            "template, then `cdvkit.answers.read_choice`'s reader for multiple choice or the "
            "shape's reader in `cdvkit.tasks` for numbers and short answers; settings in "
            "`protocol.json`); the question is right when at least one reply is right.",
            "- Sampling: lm-eval samples afresh, so on the same model the numbers agree with "
            "`cdv evaluate`'s up to sampling noise (none at a near-greedy temperature on a "
            "deterministic server), not reply for reply.",
            "- No extractor or grader: a reply cdvkit's reader cannot read counts as wrong. "
            "`cdv evaluate --extractor/--grader` may read some of them right, so compare with "
            "`cdv evaluate` run without them.",
        ]
    else:
        lines += [
            "- The answers: one `multiple_choice` request per letter after the messages and "
            "`Answer:`; the letters' likelihoods are normalised over the choices and read by "
            "`cdvkit.protocol.exact_outcome`, as cdvkit's exact protocol reads a backend's choice "
            "probabilities.",
        ]
    return lines


def _loglik_text(tag: str, folder: str, tasks: list[TaskInfo], all_examples: bool) -> list[str]:
    shapes = {t.shape for t in tasks}
    lines = [
        "Mode: `loglik`: lm-eval's own conventions. These numbers are comparable with other "
        "lm-eval tasks, not with `cdv evaluate`'s (export with the default `--lm-eval-mode "
        "protocol` for those).",
        "",
        "## Tasks",
        "",
    ]
    lines += [f"- `{t.name}`: {_what(t, all_examples)}." for t in tasks]
    lines += ["", "## What they measure", ""]
    # Each shape says what its loglik task measures (TaskShape.lm_eval_measures).
    lines += [f"- {shape_of(name).lm_eval_measures}" for name in sorted(shapes)]
    lines += [
        "",
        "## Run",
        "",
        "```bash",
        f"lm_eval --include_path {folder} --tasks {tag} --model M",
        "```",
    ]
    return lines


def task_readme(
    tag: str,
    run: str,
    tasks: list[TaskInfo],
    folder: str,
    protocol: Protocol | None,
    all_examples: bool,
    cap: int = 0,
) -> str:
    """The README.md of the task folder ``folder``, exported from the run directory named
    ``run``; ``protocol`` is the run's (protocol mode, with ``cap`` its reply limit) or None
    (loglik mode)."""
    head = [
        f"# lm-eval tasks `{tag}`: CDV examples of the run `{run}`",
        "",
        f"Written by `cdv export --format lm-eval` (cdvkit {__version__}). `--tasks {tag}` runs "
        "every task below. The YAML files name their data files by absolute path: export again "
        "rather than move the folder.",
        "",
    ]
    if protocol is not None:
        body = _protocol_text(tag, run, folder, tasks, protocol, all_examples, cap)
    else:
        body = _loglik_text(tag, folder, tasks, all_examples)
    return "\n".join(head + body) + "\n"
