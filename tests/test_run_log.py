"""The typed run log: what the store and evaluation.json hold has one declared shape, and the
objects produced match it field for field (so a reader of the types reads the truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_type_hints

import pytest

from cdvkit.evaluation import EvalSettings, evaluate, from_store, load_evaluation, save_evaluation
from cdvkit.store import RunStore
from cdvkit.store.records import (
    EvaluationResult,
    McNemarResult,
    ModelResult,
    PairedResult,
    RunSpec,
    Transfer,
)
from eval_helpers import QUESTIONS, build_run
from scripted_helpers import oracle_responder, scripted
from test_old_runs import make_old_run


def fields(td: type) -> set[str]:
    return set(get_type_hints(td))


async def test_an_evaluation_entry_has_exactly_the_declared_fields(tmp_path: Path) -> None:
    run_dir = await build_run(tmp_path / "run")
    with RunStore(run_dir) as store:
        entry = await evaluate(
            [from_store(store)],
            ["scripted/oracle"],
            store=store,
            backends={"scripted/oracle": scripted("oracle", oracle_responder(QUESTIONS))},
            settings=EvalSettings(resamples=50),
        )
    # paid_calls and cost are added by whoever knows the evaluation's own calls (cdvkit.api).
    assert set(entry) == fields(EvaluationResult) - {"paid_calls", "cost"}
    assert set(entry["transfer"]) == fields(Transfer)
    (per_model,) = entry["results"].values()
    result = per_model["scripted/oracle"]
    assert set(result) == fields(ModelResult)
    assert set(result["overall"]) == fields(PairedResult)
    assert set(result["overall"]["mcnemar"]) == fields(McNemarResult)


def test_the_run_spec_of_an_old_and_a_new_run(tmp_path: Path) -> None:
    import cdvkit

    run = make_old_run(tmp_path / "old")
    with RunStore(run, lock=False, readonly=True) as store:
        spec = store.run_spec()
    assert set(spec) == fields(RunSpec)
    assert spec["schema_version"] == 1 and spec["created_by"] == "cdvkit 0.1.0"
    assert spec["config"] and spec["config"]["data"]

    new = cdvkit.generate(data="sample", limit=2, run_dir=tmp_path / "new", max_good=1)
    assert new.spec["config"]["limit"] == 2
    assert new.spec["created_by"] == f"cdvkit {cdvkit.__version__}"


def test_an_evaluation_file_from_a_newer_cdvkit_is_refused_by_name(tmp_path: Path) -> None:
    save_evaluation(tmp_path, {"defense": "none", "defense_text": None})
    assert load_evaluation(tmp_path)["version"] == 1
    path = tmp_path / "evaluation.json"
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"newer cdvkit.*version 99"):
        load_evaluation(tmp_path)
