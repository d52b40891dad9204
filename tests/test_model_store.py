"""Model store: categories file, labels files, save/load with model card and the trust checks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import DEFAULT_MODEL
from pipeline.errors import ConfigError, InputError, ModelError
from pipeline.io import sha256_file
from pipeline.model_store import card_path, load_categories, load_classifier, read_card, \
    read_labels, save_classifier
from pipeline.tag import CategoryClassifier

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "data" / "labels" / "seeds.jsonl"
TAXONOMY = ["finance", "performance", "leadership", "workforce", "governance", "quality",
            "services", "digital", "policy"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def seeds() -> tuple[list, list]:
    data = read_labels([SEEDS], categories=TAXONOMY)
    return data.items, data.labels


@pytest.fixture(scope="module")
def saved(tmp_path_factory, seeds) -> Path:
    items, labels = seeds
    path = tmp_path_factory.mktemp("model") / "clf.skops"
    clf = CategoryClassifier().fit(items, labels)
    save_classifier(clf, path, training_files=[{"name": "seeds.jsonl", "sha256": sha256_file(SEEDS),
                                                "examples": len(items)}],
                    metrics={"macro_f1": 0.5}, counts={"x": 1})
    return path


def copy_model(src: Path, dst_dir: Path, name: str = "clf.skops") -> Path:
    dst = dst_dir / name
    dst.write_bytes(src.read_bytes())
    card = json.loads(card_path(src).read_text())
    card["artefact"] = name
    card_path(dst).write_text(json.dumps(card))
    return dst


# -- categories -------------------------------------------------------------------------------


def test_categories_file_mirrors_the_taxonomy() -> None:
    categories = load_categories()
    assert list(categories) == TAXONOMY
    for name, cat in categories.items():
        assert len(cat["description"]) > 40, name
        assert len(cat["lexicon"]) >= 40, name
        assert len(set(cat["lexicon"])) == len(cat["lexicon"]), f"duplicate terms in {name}"


def test_bad_categories_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text('[categories.finance]\nlexicon = ["ok", 3]\n')
    with pytest.raises(ConfigError, match=r"categories\.finance\.lexicon"):
        load_categories(bad)
    bad.write_text('[categories.finance]\nwords = []\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_categories(bad)
    bad.write_text("[categories\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_categories(bad)


# -- labels files ----------------------------------------------------------------------------------


def test_read_labels_seeds_has_79_taxonomy_labels(seeds) -> None:
    items, labels = seeds
    assert len(items) == 79 and set(labels) <= set(TAXONOMY)
    assert all(isinstance(i["headline"], str) and i["headline"] for i in items)


def test_unknown_category_names_file_line_and_valid_ones(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "l.jsonl", [{"headline": "a", "category": "finance"},
                                             {"headline": "b", "category": "sport"}])
    with pytest.raises(InputError) as info:
        read_labels([path], categories=TAXONOMY)
    message = str(info.value)
    assert f"{path}:2" in message and "'sport'" in message and "finance, performance" in message
    # any label set is accepted when no taxonomy is given (benchmarks)
    assert read_labels([path]).labels == ["finance", "sport"]


@pytest.mark.parametrize("row, problem", [({"category": "finance"}, "headline"),
                                          ({"headline": "a"}, "'category'"),
                                          ({"headline": " ", "category": "finance"}, "headline"),
                                          ({"headline": "a", "standfirst": 1, "category": "finance"},
                                           "standfirst")])
def test_missing_fields_name_file_and_line(tmp_path: Path, row: dict, problem: str) -> None:
    path = write_jsonl(tmp_path / "l.jsonl", [{"headline": "ok", "category": "finance"}, row])
    with pytest.raises(InputError, match=rf"l\.jsonl:2: .*{problem}"):
        read_labels([path], categories=TAXONOMY)


def test_invalid_json_and_conflicting_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text('{"headline": "a", "category": "finance"}\n{not json}\n')
    with pytest.raises(InputError, match=r"l\.jsonl:2: not valid JSON"):
        read_labels([path])
    write_jsonl(path, [{"headline": "Same text", "category": "finance"},
                       {"headline": "same  text", "category": "finance"}])
    data = read_labels([path])
    assert data.labels == ["finance"] and data.duplicates == 1
    write_jsonl(path, [{"headline": "Same text", "category": "finance"},
                       {"headline": "same text", "category": "policy"}])
    with pytest.raises(InputError, match=r"l\.jsonl:2: .*'policy'.*'finance'.*l\.jsonl:1"):
        read_labels([path])


# -- save and load ----------------------------------------------------------------------------------


def test_save_writes_card_and_load_round_trips(saved: Path, seeds) -> None:
    card = json.loads(card_path(saved).read_text())
    assert card["artefact"] == "clf.skops" and card["artefact_format"] == "skops"
    assert card["artefact_sha256"] == sha256_file(saved)
    assert card["labels"] == sorted(set(seeds[1]))
    assert card["training_data"]["files"][0]["sha256"] == sha256_file(SEEDS)
    assert len(card["training_data"]["combined_sha256"]) == 64
    assert card["gold"]["count"] == len(set(map(json.dumps, seeds[0]))) == len(card["gold"]["keys"])
    for lib in ("python", "scikit-learn", "numpy", "scipy", "skops", "hsj-pipeline"):
        assert card["versions"][lib]
    clf = load_classifier(saved)
    original = CategoryClassifier().fit(*seeds)
    assert clf.predict(seeds[0]).tolist() == original.predict(seeds[0]).tolist()
    assert (clf.predict_proba(seeds[0]) == original.predict_proba(seeds[0])).all()


def test_the_skops_file_builds_only_trusted_types(saved: Path) -> None:
    import skops.io as sio

    from pipeline.model_store import TRUSTED_TYPES

    assert set(sio.get_untrusted_types(file=saved)) <= set(TRUSTED_TYPES)


def test_a_skops_file_with_an_untrusted_type_is_refused_before_loading(tmp_path: Path, seeds) -> None:
    """Whoever can write both the model and its card cannot make loading build other types."""
    import zipfile

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "evil.skops"
    blob = sio.dumps({"model": LogisticRegression()}, compression=zipfile.ZIP_DEFLATED)
    path.write_bytes(blob)
    card = json.loads(card_path(Path(str(tmp_path / "x.skops"))).read_text()) \
        if card_path(tmp_path / "x.skops").exists() else None
    assert card is None
    save_classifier(CategoryClassifier().fit(*seeds), tmp_path / "good.skops")
    card = json.loads(card_path(tmp_path / "good.skops").read_text())
    card.update(artefact="evil.skops", artefact_sha256=sha256_file(path))
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="not trusted: sklearn.linear_model._logistic.LogisticRegression"):
        load_classifier(path)


def test_a_pickle_with_a_matching_card_runs_nothing_unless_trusted(tmp_path: Path, seeds) -> None:
    """A .joblib file executes code as it loads: it is refused before it is read unless the
    caller opts in, and then it loads (for files the user made)."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.joblib"
    save_classifier(CategoryClassifier().fit(*seeds), tmp_path / "ok.joblib")
    import joblib

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    joblib.dump(Boom(), path)
    card = json.loads(card_path(tmp_path / "ok.joblib").read_text())
    card.update(artefact="evil.joblib", artefact_sha256=sha256_file(path))
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="joblib pickle, which runs code.*--trust-pickle"):
        load_classifier(path)
    assert not marker.exists()
    clf = load_classifier(tmp_path / "ok.joblib", trust_pickle=True)
    assert clf.predict(seeds[0][:3]).tolist() == CategoryClassifier().fit(*seeds).predict(seeds[0][:3]).tolist()


def test_artefact_bytes_are_deterministic(tmp_path: Path, seeds) -> None:
    a = save_classifier(CategoryClassifier().fit(*seeds), tmp_path / "a.skops")
    b = save_classifier(CategoryClassifier().fit(*seeds), tmp_path / "b.skops")
    assert a["artefact_sha256"] == b["artefact_sha256"]


def test_tampered_artefact_is_refused(saved: Path, tmp_path: Path) -> None:
    path = copy_model(saved, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256 .* does not match"):
        load_classifier(path)


def test_corrupt_artefact_with_matching_card_is_a_model_error(saved: Path, tmp_path: Path) -> None:
    path = copy_model(saved, tmp_path)
    path.write_bytes(b"not a zip at all")
    card = json.loads(card_path(path).read_text())
    card["artefact_sha256"] = sha256_file(path)
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="not a readable skops file"):
        load_classifier(path)


def test_missing_card_missing_file_and_wrong_paths(saved: Path, tmp_path: Path) -> None:
    path = copy_model(saved, tmp_path)
    card_path(path).unlink()
    with pytest.raises(ModelError, match="model card clf.json not found"):
        load_classifier(path)
    with pytest.raises(ModelError, match="not found.*hsj-pipeline train"):
        load_classifier(tmp_path / "nothing.skops")
    (tmp_path / "dir.skops").mkdir()
    with pytest.raises(ModelError, match="not a regular file"):
        load_classifier(tmp_path / "dir.skops")
    other = tmp_path / "model.pkl"
    other.write_bytes(saved.read_bytes())
    with pytest.raises(ModelError, match=r"\.skops"):
        load_classifier(other)


def test_symlink_and_card_for_another_file_are_refused(saved: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.skops"
    os.symlink(saved, link)
    card_path(link).write_text(card_path(saved).read_text())
    with pytest.raises(ModelError, match="symlink"):
        load_classifier(link)
    renamed = tmp_path / "renamed.skops"
    renamed.write_bytes(saved.read_bytes())
    card_path(renamed).write_text(card_path(saved).read_text())  # card still says clf.skops
    with pytest.raises(ModelError, match="card is for 'clf.skops', not 'renamed.skops'"):
        load_classifier(renamed)


def test_other_sklearn_version_names_the_fix(saved: Path, tmp_path: Path) -> None:
    path = copy_model(saved, tmp_path)
    card = json.loads(card_path(path).read_text())
    card["versions"]["scikit-learn"] = "1.4.2"
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"trained with scikit-learn 1\.4\.2.*hsj-pipeline train"):
        load_classifier(path)
    card["format_version"] = 99
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="format 99"):
        read_card(path)


def test_changed_feature_code_is_detected(saved: Path, tmp_path: Path, monkeypatch) -> None:
    """If an upgrade changes how text becomes features, the probe margins move and loading refuses."""
    import pipeline.tag as tag

    load_classifier(saved)  # loads as it is
    original = tag.char_text
    monkeypatch.setattr(tag, "char_text", lambda text: original(text).replace("trust", "trusts"))
    with pytest.raises(ModelError, match="different features.*hsj-pipeline train"):
        load_classifier(saved)


def test_save_refuses_other_suffix(tmp_path: Path, seeds) -> None:
    with pytest.raises(ModelError, match=r"\.skops"):
        save_classifier(CategoryClassifier().fit(*seeds), tmp_path / "m.pkl")


# -- the shipped model ------------------------------------------------------------------------------


def test_shipped_model_loads_matches_card_and_is_sensible(seeds) -> None:
    assert DEFAULT_MODEL.is_file(), "models/category_classifier.skops is missing; run hsj-pipeline train"
    card = read_card(DEFAULT_MODEL)
    assert card["artefact_sha256"] == sha256_file(DEFAULT_MODEL)
    assert DEFAULT_MODEL.stat().st_size < 10 * 1024 * 1024 and card["artefact_format"] == "skops"
    assert card["labels"] == sorted(TAXONOMY)
    assert card["examples_per_class"] and min(card["examples_per_class"].values()) >= 10
    cv = card["cross_validation"]
    assert cv["folds"] >= 5 and cv["macro_f1"] >= 0.7 and cv["accuracy"] >= 0.75
    clf = load_classifier()
    items, labels = seeds
    # the seeds are in the training data: this checks the artefact works, not its quality
    agree = sum(p == t for p, t in zip(clf.predict(items), labels)) / len(labels)
    assert agree >= 0.85
    assert card["calibration"]["examples"] >= 200 and card["scope"]["examples"] >= 500
    assert 0.0 < card["temperature"] == clf.temperature_ and card["min_confidence"] == clf.min_confidence_


def test_shipped_model_loads_in_a_fresh_process_with_same_predictions(seeds) -> None:
    items = [i["headline"] for i in seeds[0][:10]]
    code = ("import json, sys; from pipeline import load_classifier; clf = load_classifier(); "
            "print(json.dumps(clf.predict_proba(json.loads(sys.stdin.read())).round(6).tolist()))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(items), capture_output=True,
                         text=True, check=True, cwd=REPO_ROOT)
    fresh = json.loads(out.stdout)
    here = load_classifier().predict_proba(items).round(6).tolist()
    assert fresh == here


def test_run_stage_tags_like_the_public_api() -> None:
    from pipeline import run
    from pipeline.tag import article_item, tag_items

    result = run()
    assert result.articles and all(a.category for a in result.articles)
    expected = tag_items([article_item(a) for a in result.articles], load_classifier())
    got = [{"category": a.category, "confidence": a.confidence, "uncertain": a.uncertain,
            "uncertain_reason": a.uncertain_reason, "label_source": a.label_source,
            "scores": a.scores} for a in result.articles]
    assert got == expected


def test_categories_match_the_shared_taxonomy_when_present() -> None:
    import re

    taxonomy = REPO_ROOT.parent / "shared" / "taxonomy.md"
    if not taxonomy.is_file():
        pytest.skip(f"{taxonomy} not found")
    names = re.findall(r"^\| `(\w+)` \|", taxonomy.read_text(encoding="utf-8"), flags=re.M)
    assert names == list(load_categories())


def test_artefact_hash_does_not_depend_on_the_string_hash_seed(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from pipeline.model_store import read_labels, "
            "save_classifier; from pipeline.tag import CategoryClassifier; "
            "d = read_labels([Path(sys.argv[1])]); "
            "print(save_classifier(CategoryClassifier().fit(d.items, d.labels), "
            "Path(sys.argv[2]))['artefact_sha256'])")
    hashes = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, str(SEEDS), str(tmp_path / f"m{seed}.skops")],
                             capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=env)
        hashes.append(out.stdout.strip())
    assert len(hashes[0]) == 64 and hashes[0] == hashes[1]


def test_update_card_changes_the_card_only(saved: Path, tmp_path: Path) -> None:
    from pipeline.model_store import update_card

    path = copy_model(saved, tmp_path)
    before = path.read_bytes()
    update_card(path, "heldout", {"sets": {"x": {"macro_f1": 0.5}}})
    assert read_card(path)["heldout"]["sets"]["x"]["macro_f1"] == 0.5
    assert path.read_bytes() == before
    load_classifier(path)  # still verifies


def test_train_classifier_from_files(tmp_path: Path) -> None:
    from pipeline.model_store import train_classifier

    outside = write_jsonl(tmp_path / "out.jsonl", [{"headline": h, "standfirst": None} for h in
                                                    ("Cup final ends in a draw", "Markets rally on rate cut",
                                                     "Storm warning for the coast", "Band tours Europe")])
    clf, parts = train_classifier([SEEDS], calibration=[SEEDS], outside=[outside], folds=0)
    assert parts["extra"]["calibration"]["examples"] == 79 and parts["extra"]["scope"]["examples"] == 4
    assert parts["metrics"] == {} and clf.scope_coef_ is not None
    card = save_classifier(clf, tmp_path / "m.skops", **parts)
    assert card["calibration"]["files"][0]["name"] == "seeds.jsonl"
