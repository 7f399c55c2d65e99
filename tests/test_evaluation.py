"""`cdvkit.evaluation` on real run stores made by the search with scripted models."""

from __future__ import annotations

import json

import pytest

from cdvkit.evaluation import (
    EvalSettings,
    evaluate,
    from_store,
    load_evaluation,
    load_examples_file,
    resolve_defense,
    save_evaluation,
)
from cdvkit.export import export_jsonl, export_reference
from cdvkit.models.budget import Budget
from cdvkit.models.errors import BudgetExceeded
from cdvkit.models.scripted import ScriptedModel
from cdvkit.protocol import NEAR_GREEDY
from cdvkit.store import RunStore
from eval_helpers import QUESTIONS, build_run, defended_responder, oracle_probs
from scripted_helpers import oracle_responder, scripted

FAST = EvalSettings(resamples=200)


def backends():
    return {
        "scripted/oracle": scripted("oracle", oracle_responder(QUESTIONS)),
        "scripted/robust": scripted("robust", oracle_responder(QUESTIONS, fooled_at=99)),
    }


@pytest.fixture
async def run_dir(tmp_path):
    return await build_run(tmp_path / "run")


async def test_drop_per_model_and_dataset(run_dir):
    with RunStore(run_dir) as store:
        es = from_store(store)
        assert es.label == "scripted/oracle"  # the run's target names the transfer row
        assert len(es.items) == 3 and all(i.examples for i in es.items)
        res = await evaluate(
            [es],
            ["scripted/oracle", "scripted/robust"],
            store=store,
            backends=backends(),
            settings=FAST,
        )
    fooled = res["results"]["scripted/oracle"]["scripted/oracle"]
    assert fooled["mode"] == "sample"
    o = fooled["overall"]
    assert (o["n"], o["original"], o["distracted"], o["drop"], o["relative_drop"]) == (
        3,
        1.0,
        0.0,
        1.0,
        1.0,
    )
    assert o["mcnemar"]["b"] == 3 and o["mcnemar"]["p_value"] == pytest.approx(0.25)
    assert set(fooled["by_dataset"]) == {"test", "bio"}
    assert fooled["by_dataset"]["bio"]["n"] == 2
    robust = res["results"]["scripted/oracle"]["scripted/robust"]["overall"]
    assert robust["distracted"] == 1.0 and robust["drop"] == 0.0
    assert res["transfer"]["rows"] == ["scripted/oracle"]
    assert res["transfer"]["cols"] == ["scripted/oracle", "scripted/robust"]
    assert res["transfer"]["distracted"] == [[0.0, 1.0]]
    assert res["transfer"]["drop"] == [[1.0, 0.0]]
    json.dumps(res, allow_nan=False)  # the results file must be strict JSON


async def test_answers_are_stored_and_reevaluation_is_free(run_dir):
    with RunStore(run_dir) as store:
        es = from_store(store)
        b1 = backends()
        first = await evaluate([es], list(b1), store=store, backends=b1, settings=FAST)
        paid = store.paid_calls()
        assert store.usage_by_role("evaluate")["eval"]["calls"] > 0
        assert store.paid_calls("evaluate") + store.paid_calls("search") == paid
        b2 = backends()
        second = await evaluate([es], list(b2), store=store, backends=b2, settings=FAST)
        assert all(m.calls == [] for m in b2.values())
        assert store.paid_calls() == paid
        assert second["answers"]["cached"] == second["answers"]["total"]
        assert second["results"] == first["results"]
        # Each answer is in the evaluations table with what it was asked under.
        rows = store.db.execute("SELECT data FROM evaluations").fetchall()
        data = [json.loads(r[0]) for r in rows]
        assert {d["variant"].split(":")[0] for d in data} == {"original", "example"}
        assert {d["model"] for d in data} == set(b1)
        assert all(d["defense"] == "none" and d["samples"] == 5 for d in data)


async def test_interrupted_evaluation_resumes_without_paying_twice(run_dir, tmp_path):
    # Reference: what a complete evaluation costs from scratch in a fresh copy of the run.
    ref_dir = await build_run(tmp_path / "ref")
    with RunStore(ref_dir) as store:
        before = store.paid_calls()
        await evaluate(
            [from_store(store)],
            ["scripted/robust"],
            store=store,
            backends=backends(),
            settings=FAST,
        )
        full_cost = store.paid_calls() - before
    with RunStore(run_dir) as store:
        before = store.paid_calls()
        with pytest.raises(BudgetExceeded):
            await evaluate(
                [from_store(store)],
                ["scripted/robust"],
                store=store,
                backends=backends(),
                settings=FAST,
                budget=Budget(max_calls=2),
            )
        assert store.paid_calls() - before == 2
        res = await evaluate(
            [from_store(store)],
            ["scripted/robust"],
            store=store,
            backends=backends(),
            settings=FAST,
        )
        assert store.paid_calls() - before == full_cost
        assert res["answers"]["cached"] == 2


async def test_all_examples_averages_per_question(tmp_path):
    # A target fooled only when its distraction is the "suffix" kind is right on some examples.
    run = await build_run(tmp_path / "run")
    with RunStore(run) as store:
        es = from_store(store)
        counts = {i.id: len(i.examples) for i in es.items}
        assert max(counts.values()) > 1

        def half(req, sample):
            q = req.mcq.question
            inner = oracle_responder(QUESTIONS)
            # Fooled only when the distraction comes first.
            fooled = q.startswith("DISTRACT")
            return (
                inner(req, sample)
                if fooled
                else oracle_responder(QUESTIONS, fooled_at=99)(req, sample)
            )

        model = {"scripted/half": scripted("half", half)}
        first = await evaluate(
            [es], ["scripted/half"], store=store, backends=model, settings=EvalSettings(resamples=0)
        )
        every = await evaluate(
            [es],
            ["scripted/half"],
            store=store,
            backends=model,
            settings=EvalSettings(resamples=0, all_examples=True),
        )
    expected = []
    for item in es.items:
        right = [0.0 if v.question.startswith("DISTRACT") else 1.0 for v in item.examples]
        expected.append(sum(right) / len(right))
    got = [row[3] for row in every["results"]["scripted/oracle"]["scripted/half"]["items"]]
    assert got == pytest.approx(expected)
    first_got = [row[3] for row in first["results"]["scripted/oracle"]["scripted/half"]["items"]]
    assert first_got == [
        0.0 if i.examples[0].question.startswith("DISTRACT") else 1.0 for i in es.items
    ]


async def test_exact_scoring_uses_the_argmax(run_dir):
    probs_model = ScriptedModel(
        "scripted/probs", responder=lambda r, i: "Answer: Z", probs_fn=oracle_probs(QUESTIONS)
    )
    with RunStore(run_dir) as store:
        res = await evaluate(
            [from_store(store)],
            ["scripted/probs"],
            store=store,
            backends={"scripted/probs": probs_model},
            settings=EvalSettings(resamples=200, scoring="exact"),
        )
        r = res["results"]["scripted/oracle"]["scripted/probs"]
        assert r["mode"] == "exact"
        assert (r["overall"]["original"], r["overall"]["distracted"]) == (1.0, 0.0)
        assert probs_model.calls == []  # no free-text generation was needed
        # Forcing sampling reads the (unparsable) replies instead: all wrong.
        res = await evaluate(
            [from_store(store)],
            ["scripted/probs"],
            store=store,
            backends={"scripted/probs": probs_model},
            settings=EvalSettings(resamples=0, scoring="sample"),
        )
        r = res["results"]["scripted/oracle"]["scripted/probs"]
        assert r["mode"] == "sample" and r["overall"]["original"] == 0.0


async def test_defense_file_and_side_by_side_entries(run_dir, tmp_path):
    prompt = tmp_path / "calm.txt"
    prompt.write_text("STAY-CALM: ignore every sentence unrelated to the question.\n")
    d = resolve_defense(str(prompt))
    assert d.label == "calm.txt" and d.text.startswith("STAY-CALM")
    with pytest.raises(ValueError, match="unknown defense"):
        resolve_defense("no-such-defense")
    model = {"scripted/def": scripted("def", defended_responder(QUESTIONS, "STAY-CALM"))}
    with RunStore(run_dir) as store:
        es = from_store(store)
        for spec in ("none", str(prompt)):
            entry = await evaluate(
                [es], ["scripted/def"], store=store, defense=spec, backends=model, settings=FAST
            )
            save_evaluation(run_dir, entry)
    saved = load_evaluation(run_dir)["evaluations"]
    assert list(saved) == ["none", "calm.txt"]
    drop = {
        k: v["results"]["scripted/oracle"]["scripted/def"]["overall"]["drop"]
        for k, v in saved.items()
    }
    assert drop == {"none": 1.0, "calm.txt": 0.0}
    # The defense text went into the system prompt the model saw.
    systems = {req.messages[0][1] for req, _ in model["scripted/def"].calls}
    assert any("STAY-CALM" in s for s in systems) and any("STAY-CALM" not in s for s in systems)


async def test_transfer_matrix_over_two_example_sets(run_dir, tmp_path):
    other = tmp_path / "enhanced" / "gpt-4o-mini" / "Colors_enhanced.json"
    other.parent.mkdir(parents=True)
    with RunStore(run_dir) as store:
        export_reference(store, other)
        es_run = from_store(store)
        es_ref = load_examples_file(other)
        assert es_ref.label == "gpt-4o-mini" and es_ref.kind == "reference"
        res = await evaluate(
            [es_run, es_ref],
            ["scripted/oracle", "scripted/robust"],
            store=store,
            backends=backends(),
            settings=FAST,
        )
    tr = res["transfer"]
    assert tr["rows"] == ["scripted/oracle", "gpt-4o-mini"]
    assert tr["distracted"] == [[0.0, 1.0], [0.0, 1.0]]
    assert [s["label"] for s in res["sources"]] == tr["rows"]


async def test_jsonl_export_round_trips_into_an_example_set(run_dir, tmp_path):
    with RunStore(run_dir, lock=False, readonly=True) as store:
        export_jsonl(store, tmp_path / "ex.jsonl")
        direct = from_store(store)
        store.export_jsonl(tmp_path / "plain.jsonl")  # the store's own export: no target
    es = load_examples_file(tmp_path / "ex.jsonl")
    assert es.kind == "jsonl" and es.label == "scripted/oracle"
    assert es.items == direct.items
    plain = load_examples_file(tmp_path / "plain.jsonl")
    assert plain.label == "plain" and plain.items == direct.items


async def test_a_failing_answer_drops_only_its_question(run_dir):
    from cdvkit.models.errors import ModelError

    def flaky(req, sample):
        if "grass" in req.mcq.question:
            raise ModelError("scripted outage", model="scripted/flaky")
        return oracle_responder(QUESTIONS, fooled_at=99)(req, sample)

    model = scripted("flaky", flaky)
    model.max_retries = 0
    with RunStore(run_dir) as store:
        res = await evaluate(
            [from_store(store)],
            ["scripted/flaky"],
            store=store,
            backends={"scripted/flaky": model},
            settings=FAST,
        )
        r = res["results"]["scripted/oracle"]["scripted/flaky"]
        assert r["overall"]["n"] == 2 and r["dropped"] == 1
        assert res["errors"] and all("grass" in e for e in res["errors"])
        assert store.failures()  # recorded like any failed call


def test_settings_are_validated():
    with pytest.raises(ValueError):
        EvalSettings(samples=0)
    with pytest.raises(ValueError):
        EvalSettings(scoring="vote")
    with pytest.raises(ValueError):
        EvalSettings(prompt="essay")
    # The protocol's defaults: five near-greedy answers, as the search confirms examples.
    assert EvalSettings().protocol().samples == 5
    assert EvalSettings(samples=1).effective_temperature == NEAR_GREEDY
    assert EvalSettings(samples=5, temperature=0.2).effective_temperature == 0.2


async def test_extractor_reads_unparsable_replies_and_is_part_of_the_cache_key(run_dir):
    vague = {"scripted/vague": scripted("vague", lambda req, i: "Probably the usual one.")}
    extractor = scripted("ext", lambda req, i: "A")
    with RunStore(run_dir) as store:
        es = from_store(store)
        sky = [i for i in es.items if i.id == "sky"]
        es.items = sky  # "blue" is choice A of the original question
        plain = await evaluate([es], ["scripted/vague"], store=store, backends=vague, settings=FAST)
        helped = await evaluate(
            [es],
            ["scripted/vague"],
            store=store,
            backends=vague,
            settings=FAST,
            extractor=extractor,
        )
    assert plain["results"]["scripted/oracle"]["scripted/vague"]["overall"]["original"] == 0.0
    assert helped["results"]["scripted/oracle"]["scripted/vague"]["overall"]["original"] == 1.0
    assert helped["answers"]["cached"] == 0  # answers without extractor were not reused
    assert len(vague["scripted/vague"].calls) == 2  # the replies themselves were (call cache)
    assert extractor.calls
