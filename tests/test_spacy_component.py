"""The ``hsj_category`` spaCy component: same tags as ``hsj-pipeline tag``, spaCy's conventions,
batches, config round trips and other components beside it."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

import pipeline.spacy_component as component_module
import pipeline.tag as tag_module
from pipeline.config import DEFAULT_MODEL, TagConfig
from pipeline.errors import ConfigError, ModelError
from pipeline.model_store import load_classifier, read_card, save_classifier
from pipeline.tag import tag_items

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "data" / "labels" / "seeds.jsonl"
TAG_FIELDS = ("category", "confidence", "uncertain", "uncertain_reason", "label_source", "scores")

HEADLINES = [
    "ICB sued over conflict in £40m contract award",
    "Exclusive: Trust chief executive steps down after damning CQC report",
    "System deficit doubles to £80m as savings plans slip",
    "Manchester United sign striker in record transfer",   # off-topic
    "Recovery Watch: elective waits fall for the third month",  # a series label
    "Resident doctors vote to strike over pay",
    "Electronic patient record go-live delayed again",
    "Trusts\u2019 \u2018significant concern\u2019 over A&E four-hour target",
]


def seed_record() -> dict:
    """A training item (the model gives it its gold label)."""
    return json.loads(SEEDS.read_text(encoding="utf-8").splitlines()[0])


def tags_of(doc: Doc) -> dict:
    """A doc's annotations, spelled as ``tag`` spells its fields."""
    return {"category": doc._.hsj_category, "confidence": doc._.hsj_confidence,
            "uncertain": doc._.hsj_uncertain, "uncertain_reason": doc._.hsj_uncertain_reason,
            "label_source": doc._.hsj_label_source, "scores": dict(doc.cats)}


@pytest.fixture(scope="module")
def nlp() -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("hsj_category")
    return nlp


@pytest.fixture(scope="module")
def clf():
    return load_classifier(DEFAULT_MODEL)


def test_entry_point_registers_the_factory() -> None:
    points = {p.name: p.value for p in metadata.entry_points(group="spacy_factories")}
    assert points.get("hsj_category") == "hsj_pipeline_spacy:make_hsj_category"


def test_add_pipe_by_name_in_a_fresh_process() -> None:
    """spaCy finds the factory through the entry point alone; and since it imports every entry
    point whenever it builds a pipeline, ``spacy.blank`` must not pull in scikit-learn."""
    code = ("import sys, spacy\n"
            "nlp = spacy.blank('en')\n"
            "print('sklearn' in sys.modules, 'pipeline.tag' in sys.modules)\n"
            "nlp.add_pipe('hsj_category')\n"
            "doc = nlp('Trust chief executive steps down')\n"
            "print(doc._.hsj_category, len(doc.cats))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "leadership", "9"]


def test_scores_and_extensions_match_tag_items(nlp, clf) -> None:
    docs = list(nlp.pipe(HEADLINES))
    expected = tag_items(HEADLINES, clf)
    assert [tags_of(d) for d in docs] == expected
    assert all(len(d.cats) == 9 for d in docs)
    assert {d._.hsj_uncertain_reason for d in docs} >= {None, "out_of_scope"}


def test_same_tags_as_the_tag_command(nlp, tmp_path: Path) -> None:
    """The CLI through its real process and the component agree field for field."""
    record = seed_record()
    source = tmp_path / "in.jsonl"
    lines = HEADLINES + [json.dumps({"headline": "ICB overspend grows",
                                     "standfirst": "The system now forecasts a £30m deficit"}),
                         json.dumps({"headline": record["headline"],
                                     "standfirst": record.get("standfirst")})]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pipeline", "tag", str(source)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    cli = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(cli) == len(lines)

    docs = [nlp.make_doc(h) for h in HEADLINES]
    for data in map(json.loads, lines[len(HEADLINES):]):
        doc = nlp.make_doc(data["headline"])
        doc._.hsj_standfirst = data["standfirst"]
        docs.append(doc)
    ours = [tags_of(d) for d in nlp.pipe(docs)]
    assert ours == [{k: row[k] for k in TAG_FIELDS} for row in cli]
    assert ours[-1]["label_source"] == "gold" and ours[-1]["category"] == record["category"]


def test_one_doc_alone_gets_its_batch_scores(nlp) -> None:
    batched = [tags_of(d) for d in nlp.pipe(HEADLINES, batch_size=3)]
    alone = [tags_of(nlp(h)) for h in HEADLINES]
    assert alone == batched


def test_one_classifier_call_per_batch(nlp, monkeypatch) -> None:
    calls: list[int] = []
    real = tag_module.tag_columns

    def counting(items, clf, config=None):
        calls.append(len(items))
        return real(items, clf, config)

    monkeypatch.setattr(tag_module, "tag_columns", counting)
    docs = list(nlp.pipe(HEADLINES, batch_size=3))
    assert calls == [3, 3, 2]
    assert all(d._.hsj_category for d in docs)


def test_predict_has_no_side_effects_and_set_annotations_writes(nlp, clf) -> None:
    component = nlp.get_pipe("hsj_category")
    docs = [nlp.make_doc(h) for h in HEADLINES[:3]]
    scores = component.predict(docs)
    assert all(d.cats == {} and d._.hsj_category is None for d in docs)
    assert scores.rows == [0, 1, 2] and len(scores.columns.categories) == 3
    component.set_annotations(docs, scores)
    assert [tags_of(d) for d in docs] == tag_items(HEADLINES[:3], clf)


def test_standfirst_extension_is_read(nlp, clf) -> None:
    item = {"headline": "Trust board meeting", "standfirst": "The provider forecasts a £30m deficit "
                                                             "and asks the ICB for cash support"}
    doc = nlp.make_doc(item["headline"])
    doc._.hsj_standfirst = item["standfirst"]
    with_standfirst = tags_of(nlp(doc))
    assert with_standfirst == tag_items([item], clf)[0]
    assert with_standfirst["scores"] != tags_of(nlp(item["headline"]))["scores"]


def test_standfirst_must_be_a_string(nlp) -> None:
    doc = nlp.make_doc("Trust chief executive steps down")
    doc._.hsj_standfirst = 42
    with pytest.raises(ValueError, match="hsj_standfirst"):
        nlp(doc)


def test_blank_docs_are_left_untagged(nlp) -> None:
    docs = list(nlp.pipe(["Trust chief executive steps down", "", "   "]))
    assert docs[0]._.hsj_category == "leadership"
    assert [(d.cats, d._.hsj_category, d._.hsj_uncertain) for d in docs[1:]] == [({}, None, None)] * 2


def test_other_cats_are_kept(nlp) -> None:
    doc = nlp.make_doc("Trust chief executive steps down")
    doc.cats["SOMETHING_ELSE"] = 1.0
    doc = nlp(doc)
    assert doc.cats["SOMETHING_ELSE"] == 1.0 and len(doc.cats) == 10


def test_min_confidence_from_config(nlp, clf) -> None:
    strict = spacy.blank("en")
    component = strict.add_pipe("hsj_category", config={"min_confidence": 0.99})
    assert component.min_confidence == 0.99
    assert nlp.get_pipe("hsj_category").min_confidence == clf.min_confidence_
    ours = [tags_of(d) for d in strict.pipe(HEADLINES)]
    assert ours == tag_items(HEADLINES, clf, TagConfig(min_confidence=0.99))
    default = [tags_of(d) for d in nlp.pipe(HEADLINES)]
    assert sum(t["uncertain"] for t in ours) > sum(t["uncertain"] for t in default)


@pytest.mark.parametrize("value", [1.5, -0.1])
def test_min_confidence_out_of_range_names_the_key(value: float) -> None:
    with pytest.raises(ConfigError, match=r"components\.hsj_category\.min_confidence"):
        spacy.blank("en").add_pipe("hsj_category", config={"min_confidence": value})


def test_model_path_and_trust_pickle(tmp_path: Path, clf) -> None:
    pickle = tmp_path / "m.joblib"
    save_classifier(clf, pickle)
    with pytest.raises(ModelError, match="pickle"):
        spacy.blank("en").add_pipe("hsj_category", config={"model": str(pickle)})
    nlp = spacy.blank("en")
    nlp.add_pipe("hsj_category", config={"model": str(pickle), "trust_pickle": True})
    assert tags_of(nlp(HEADLINES[0])) == tag_items(HEADLINES[:1], clf)[0]
    with pytest.raises(ModelError, match="not found"):
        spacy.blank("en").add_pipe("hsj_category", config={"model": str(tmp_path / "none.skops")})


def test_beside_the_lookup_lemmatizer_and_sentencizer(clf) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("hsj_category")
    nlp.initialize()
    text = "Trusts face cuts. The ICB says trusts must save £20m."
    doc = nlp(text)
    assert len(list(doc.sents)) == 2
    assert [t.lemma_ for t in doc if t.lower_ == "trusts"] == ["Trusts", "trust"]
    assert tags_of(doc) == tag_items([text], clf)[0]


def test_config_round_trip_references_the_model(tmp_path: Path, clf) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hsj_category", config={"model": str(DEFAULT_MODEL), "min_confidence": 0.6})
    shown = nlp.config["components"]["hsj_category"]
    assert shown == {"factory": "hsj_category", "model": str(DEFAULT_MODEL),
                     "min_confidence": 0.6, "trust_pickle": False}
    nlp.to_disk(tmp_path / "nlp")
    saved = list((tmp_path / "nlp").rglob("*"))
    assert not [p for p in saved if p.suffix in (".skops", ".joblib")]
    assert sum(p.stat().st_size for p in saved if p.is_file()) < 1_000_000  # no model copy
    record = json.loads((tmp_path / "nlp" / "hsj_category" / "model.json").read_text())
    assert record == {"model": str(DEFAULT_MODEL),
                      "model_sha256": read_card(DEFAULT_MODEL)["artefact_sha256"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same model: no warning
        loaded = spacy.load(tmp_path / "nlp")
    assert loaded.pipe_names == ["sentencizer", "hsj_category"]
    assert loaded.config["components"]["hsj_category"] == shown
    assert loaded.get_pipe("hsj_category").min_confidence == 0.6
    assert [tags_of(d) for d in loaded.pipe(HEADLINES)] == [tags_of(d) for d in nlp.pipe(HEADLINES)]


def test_loading_a_pipeline_whose_model_changed_warns(nlp, tmp_path: Path) -> None:
    nlp.to_disk(tmp_path / "nlp")
    record = tmp_path / "nlp" / "hsj_category" / "model.json"
    record.write_text(json.dumps({"model": "", "model_sha256": "0" * 64}))
    with pytest.warns(UserWarning, match="not the model this pipeline was saved with"):
        loaded = spacy.load(tmp_path / "nlp")
    assert tags_of(loaded(HEADLINES[0])) == tags_of(nlp(HEADLINES[0]))  # still usable
    record.write_text("not json")
    with pytest.raises(ModelError, match="model.json"):
        spacy.load(tmp_path / "nlp")


def test_bytes_round_trip(nlp) -> None:
    other = spacy.blank("en")
    other.add_pipe("hsj_category")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other.from_bytes(nlp.to_bytes())
    assert tags_of(other(HEADLINES[0])) == tags_of(nlp(HEADLINES[0]))


def test_default_config_uses_the_shipped_model(nlp) -> None:
    assert nlp.config["components"]["hsj_category"] == {
        "factory": "hsj_category", "model": "", "min_confidence": None, "trust_pickle": False}


def test_initialize_is_a_no_op_and_evaluate_scores_cats(nlp) -> None:
    nlp.initialize()
    gold = [("Trust chief executive steps down", "leadership"),
            ("System deficit doubles to £80m", "finance")]
    labels = nlp.get_pipe("hsj_category").labels
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": {c: float(c == y) for c in labels}})
                for t, y in gold]
    scores = nlp.evaluate(examples)
    assert scores["cats_macro_auc"] is not None and 0.0 <= scores["cats_score"] <= 1.0
    assert scores["cats_f_per_type"]["leadership"]["r"] == 1.0


def test_extensions_are_registered_once() -> None:
    before = {name: Doc.get_extension(name) for name in component_module.EXTENSIONS}
    importlib.reload(component_module)  # must not raise (force=False) nor replace anything
    component_module.register_extensions()
    assert {name: Doc.get_extension(name) for name in component_module.EXTENSIONS} == before

