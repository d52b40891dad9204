"""Clean stage: the spaCy traps from the conventions, domain normalisation, repair, blurbs."""
from __future__ import annotations

import pickle

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clean import (_CAPS_PLURAL, _LETTER, TextCleaner, _placeholder_token, article_text,
                            CleanStage, clean_articles, find_blurbs, parse_amounts, repair_text)
from pipeline.config import CleanConfig
from pipeline.errors import ConfigError
from pipeline.records import Article


@pytest.fixture(scope="module")
def cleaner() -> TextCleaner:
    return TextCleaner()


def toks(cleaner: TextCleaner, text: str) -> list[str]:
    return cleaner.tokens([text])[0]


# ---- spaCy traps (docs: conventions "spaCy without a downloaded model") ------------------------

def test_lookup_case_trap_capitalised_plural_is_lemmatised(cleaner):
    assert toks(cleaner, "Trusts") == ["trust"]
    assert toks(cleaner, "Trusts warn trusts") == ["trust", "warn", "trust"]


def test_as_does_not_become_a(cleaner):
    out = toks(cleaner, "NHSE acts as performance deteriorates")
    assert "a" not in out and "as" not in out
    assert out == ["nhs_england", "act", "performance", "deteriorate"]


def test_money_is_one_token_and_m_is_not_be(cleaner):
    out = toks(cleaner, "Funding cuts of up to £20m and £1.7m")
    assert out == ["fund", "cut", "£m", "£m"]
    assert "be" not in out and "m" not in out and "20" not in out


def test_money_magnitudes(cleaner):
    assert toks(cleaner, "£1bn gap, £240,000 salary, £9 fee") == ["£bn", "gap", "£k", "salary", "£", "fee"]


def test_acronym_plurals_reduce(cleaner):
    assert toks(cleaner, "ICSs and ICBs") == ["ics", "icb"]
    assert toks(cleaner, "GPs") == ["gp"]
    assert toks(cleaner, "CCGs") == ["ccg"]  # general rule, not a list


def test_curly_quotes_and_nbsp_match_plain(cleaner):
    curly = "Trust\u2019s \u2018leadership behaviour\u2019 attacked by six\u00a0ICBs"
    plain = "Trust's 'leadership behaviour' attacked by six ICBs"
    assert toks(cleaner, curly) == toks(cleaner, plain) == ["trust", "leadership", "behaviour", "attack", "icb"]
    assert toks(cleaner, "NHS\u00a0England") == ["nhs_england"]


# ---- domain normalisation ---------------------------------------------------------------------

def test_aliases_unify_acronyms_and_names(cleaner):
    assert toks(cleaner, "NHSE") == toks(cleaner, "NHS England") == ["nhs_england"]
    assert toks(cleaner, "Care Quality Commission") == toks(cleaner, "CQC") == ["cqc"]
    assert toks(cleaner, "integrated care boards") == toks(cleaner, "ICBs") == ["icb"]
    assert toks(cleaner, "A&E") == toks(cleaner, "accident and emergency") == ["a&e"]
    assert toks(cleaner, "BMA") == ["bma"]


def test_phrases_stay_one_token(cleaner):
    assert toks(cleaner, "Chief executives quit") == ["chief_executive", "quit"]
    assert toks(cleaner, "waiting lists grow") == ["waiting_list", "grow"]
    assert toks(cleaner, "elective recovery") == ["elective_recovery"]


def test_config_extends_phrases_and_stop_words():
    cleaner = TextCleaner(CleanConfig(phrases=["virtual hospital"], extra_stop_words=["plan"]))
    assert cleaner.tokens(["Virtual hospitals plan"]) == [["virtual_hospital"]]


def test_percentages_and_numbers(cleaner):
    assert toks(cleaner, "20 per cent rise, 15% fall in 2024-25") == ["percent", "rise", "percent", "fall"]


def test_stop_words_include_domain_list(cleaner):
    assert toks(cleaner, "HSJ reveals what they said") == []
    assert toks(cleaner, "the and of 12 2024") == []


def test_series_and_kickers_are_not_topic_words(cleaner):
    assert toks(cleaner, "London Eye: From shared chair to where?") == ["share", "chair"]
    assert toks(cleaner, "Exclusive: Trust deficit") == ["trust", "deficit"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u00a0"])
def test_empty_texts_give_no_tokens(cleaner, text):
    assert cleaner.tokens([text]) == [[]]


def test_parse_amounts_in_pounds():
    assert parse_amounts("£20m, £1.7m, £240,000 and £1bn") == [2e7, 1.7e6, 2.4e5, 1e9]
    assert parse_amounts("$10 million") == []
    assert parse_amounts(None) == []


# ---- scraped-text repair ------------------------------------------------------------------------

@pytest.mark.parametrize("raw, repaired_contains, gone", [
    ("Google #39;s plan", "Google's plan", "#39;"),
    ("he said quot;no quot; again", 'he said "no " again', "quot;"),
    ("a second\\team", "a second team", "\\"),
    ("Peptides (Reuters)", "Peptides", "Reuters"),
    ("AP - A company founded", "A company founded", "AP"),
    ("LONDON (Reuters) - Oil prices rose", "Oil prices rose", "LONDON"),
    ("Rates &amp; fees", "Rates & fees", "amp"),
    ("see http://example.com/x now", "see", "http"),
])
def test_repair_text(raw, repaired_contains, gone):
    out = repair_text(raw)
    assert repaired_contains in out
    assert gone not in out


def test_cleaner_repairs_before_tokenising(cleaner):
    assert toks(cleaner, "Microsoft #39;s quot;Longhorn quot; (AP)") == ["microsoft", "longhorn"]
    assert toks(cleaner, "#36;10 million prize") == ["$m", "prize"]


# ---- TextCleaner contract -----------------------------------------------------------------------

HEADLINES = [
    "Eleven ICSs warned of \u2018significant concern\u2019 about overspending",
    "Threefold ICS variation in GP phone access revealed",
    "Exclusive: NHSE begins to claw back funding from ICSs to pay off historic debts",
    "Trust appoints new chair from ICB",
    "\u00a3800m deal to transfer control of community services to acutes",
]


def test_same_tokens_alone_or_in_batch():
    batch = TextCleaner().tokens(HEADLINES + HEADLINES[::-1])
    for i, text in enumerate(HEADLINES):
        assert TextCleaner().tokens([text])[0] == batch[i] == batch[len(batch) - 1 - i]


def test_pickle_is_cheap_and_equivalent(cleaner):
    before = cleaner.tokens(HEADLINES)
    blob = pickle.dumps(cleaner)
    assert len(blob) < 2000 and b"spacy" not in blob
    assert pickle.loads(blob).tokens(HEADLINES) == before


def test_returned_lists_are_copies(cleaner):
    first = cleaner.tokens(["Trust deficit"])[0]
    first.append("mutated")
    assert cleaner.tokens(["Trust deficit"])[0] == ["trust", "deficit"]


def test_tokens_do_not_depend_on_the_batch():
    """Batches can be cleaned anywhere and joined: a text's tokens are its own."""
    texts = [f"{h} number {i}" for i, h in enumerate(HEADLINES * 4)]
    whole = TextCleaner().tokens(texts)
    cleaner = TextCleaner()
    assert [t for i in range(0, len(texts), 7) for t in cleaner.tokens(texts[i:i + 7])] == whole


def test_iter_tokens_streams_in_batches():
    cleaner = TextCleaner(CleanConfig(batch_size=2))
    assert list(cleaner.iter_tokens(iter(HEADLINES))) == TextCleaner().tokens(HEADLINES)


def test_missing_normalise_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        TextCleaner(CleanConfig(normalise_file=str(tmp_path / "nope.toml"))).tokens(["x y"])
    assert info.value.key == "clean.normalise_file"


def test_bad_normalise_file_names_the_key(tmp_path):
    path = tmp_path / "n.toml"
    path.write_text('stop_words = "hsj"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="stop_words"):
        TextCleaner(CleanConfig(normalise_file=str(path))).tokens(["x y"])


# ---- articles and blurbs --------------------------------------------------------------------------

BLURB = "Essential insight into England\u2019s biggest health economy, by HSJ bureau chief Ben Clover."


def _articles() -> list[Article]:
    return [
        Article(id="a", headline="Trust posts \u00a320m deficit", standfirst="The trust\u2019s deficit grew to \u00a31.7m."),
        Article(id="b", headline="GP access falls", standfirst="Shared stock text about the column."),
        Article(id="c", headline="Chair appointed", standfirst="Shared stock text about the column."),
        Article(id="d", headline="From shared chair to where?", standfirst=BLURB, series="London Eye"),
        Article(id="e", headline="Revealed: Waiting lists grow", kicker="Revealed", standfirst=None),
        Article(id="f", headline="HSJ says", standfirst=""),
    ]


def test_find_blurbs_repeated_standfirst_and_series():
    blurbs = find_blurbs(_articles())
    assert "shared stock text about the column." in blurbs
    assert any("essential insight" in b for b in blurbs)
    assert not any("deficit" in b for b in blurbs)


def test_article_text_drops_kicker_series_and_blurbs():
    arts = _articles()
    blurbs = find_blurbs(arts)
    assert article_text(arts[0], blurbs) == "Trust posts \u00a320m deficit\nThe trust\u2019s deficit grew to \u00a31.7m."
    assert article_text(arts[1], blurbs) == "GP access falls"
    assert article_text(arts[3], blurbs) == "From shared chair to where?"
    assert article_text(arts[4], blurbs) == "Waiting lists grow"


def test_clean_articles_fills_tokens_amounts_and_counts():
    arts = _articles()
    result = clean_articles(arts, CleanConfig())
    assert arts[0].tokens == ["trust", "post", "£m", "deficit", "trust", "deficit", "grow", "£m"]
    assert arts[0].amounts == [2e7, 1.7e6]
    assert arts[1].tokens == ["gp", "access", "fall"]  # blurb ignored
    assert arts[3].tokens == ["share", "chair"]
    assert arts[4].tokens == ["waiting_list", "grow"]
    assert arts[5].tokens == [] and arts[5].amounts == []
    assert result.counts["blurbs"] == 2
    assert result.counts["blurb_articles"] == 3
    assert result.counts["empty"] == 1
    assert (result.headline_tokens[0], result.standfirst_tokens[0]) == \
        (["trust", "post", "£m", "deficit"], ["trust", "deficit", "grow", "£m"])


def test_clean_articles_on_sample_pages(sample_pages):
    from pipeline.config import ParseConfig
    from pipeline.parse import parse_paths

    arts = list(parse_paths(sample_pages, ParseConfig()).articles)
    result = clean_articles(arts, CleanConfig())
    assert result.counts["blurbs"] >= 2  # London Eye and Recovery Watch/West Country blurbs
    clover = [a for a in arts if a.series == "London Eye"]
    assert clover and all("clover" not in a.tokens and "insight" not in a.tokens for a in clover)
    claw = next(a for a in arts if a.headline.startswith("NHSE begins to claw back"))
    assert claw.amounts == [2e7] and "£m" in claw.tokens and "exclusive" not in claw.tokens


def test_stage_fit_predict_set_annotations(sample_pages):
    """The stage's protocol: fit on the corpus (blurbs, counts), predict a batch without changing
    it, set_annotations writes tokens and amounts and keeps the headline split; any grouping of
    the batches gives the one-batch result."""
    import copy

    from pipeline.config import ParseConfig
    from pipeline.parse import parse_paths

    arts = list(parse_paths(sample_pages, ParseConfig()).articles) + _articles()
    whole = copy.deepcopy(arts)
    one = CleanStage(CleanConfig()).fit(whole)
    one.set_annotations(whole, one.predict(whole))

    stage = CleanStage(CleanConfig()).fit(arts)
    assert stage.counts == one.counts and stage.blurbs == one.blurbs
    before = copy.deepcopy(arts[:10])
    columns = stage.predict(arts[:10])
    assert arts[:10] == before  # predict changed nothing
    counts = stage.set_annotations(arts[:10], columns)
    for start in range(10, len(arts), 9):
        batch = arts[start:start + 9]
        counts["empty"] += stage.set_annotations(batch, stage.predict(batch))["empty"]
    assert [(a.tokens, a.amounts) for a in arts] == [(a.tokens, a.amounts) for a in whole]
    assert [stage.split(a) for a in arts] == [one.split(a) for a in whole]
    assert stage.split(arts[0])[0] and any(stage.split(a)[1] for a in arts)
    assert counts["empty"] == sum(not a.tokens for a in whole)
    assert any(a.amounts for a in arts) and stage.counts["blurb_articles"] > 0


def test_frozen_cleaner_ignores_later_list_edits(tmp_path) -> None:
    # A trained model freezes its cleaner: editing the normalise file afterwards must not
    # change the tokens it sees (it would silently change the model's features).
    from pipeline.clean import NORMALISE_FILE

    custom = tmp_path / "normalise.toml"
    custom.write_text(NORMALISE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    frozen = TextCleaner(CleanConfig(normalise_file=str(custom))).freeze()
    before = frozen.tokens(["Deficit talks stall at trust"])
    custom.write_text(custom.read_text(encoding="utf-8").replace(
        'stop_words = [', 'stop_words = [\n  "deficit",', 1), encoding="utf-8")
    restored = pickle.loads(pickle.dumps(frozen))
    assert restored.tokens(["Deficit talks stall at trust"]) == before
    assert "deficit" in before[0]
    live = TextCleaner(CleanConfig(normalise_file=str(custom)))
    assert "deficit" not in live.tokens(["Deficit talks stall at trust"])[0]


def test_cleaners_share_one_spacy_pipeline_and_keep_their_own_lists(tmp_path) -> None:
    # the run's cleaner and a trained model's are built in one process: spaCy once, lists each
    from pipeline.clean import NORMALISE_FILE

    custom = tmp_path / "normalise.toml"
    custom.write_text(NORMALISE_FILE.read_text(encoding="utf-8").replace(
        'stop_words = [', 'stop_words = [\n  "deficit",', 1), encoding="utf-8")
    plain, edited = TextCleaner(), TextCleaner(CleanConfig(normalise_file=str(custom)))
    text = ["Deficit talks stall at trust's A&E"]
    assert plain._s["tokenizer"] is edited._s["tokenizer"] and plain._s["table"] is edited._s["table"]
    assert "deficit" in plain.tokens(text)[0] and "deficit" not in edited.tokens(text)[0]
    assert [t for t in plain.tokens(text)[0] if t != "deficit"] == edited.tokens(text)[0]


# ---- the chunk-cached fast path equals whole-text spaCy tokenisation ----------------------------

def _reference_prepare(text: str) -> str:
    """``TextCleaner.prepare`` before its per-pattern guards, verbatim."""
    import html
    import unicodedata

    from pipeline import clean as c

    text = unicodedata.normalize("NFKC", text).translate(c._QUOTES)
    text = html.unescape(text)
    text = c._BARE_NUMERIC.sub(c._bare_numeric, text)
    text = c._BARE_NAMED.sub(lambda m: c._NAMED_BARE[m.group(1)], text)
    text = html.unescape(text)
    text = c._TAG.sub(" ", text).replace("\\", " ")
    text = c._URL.sub(" ", text)
    text = c._SOURCE_TAG.sub(" ", text)
    for _ in range(2):
        text = c._DATELINE.sub("", text.lstrip(" -:|"), count=1)
    return c._MONEY.sub(c._money_placeholder, text)


def _reference_tokens(cleaner: TextCleaner, text: str) -> list[str]:
    """The cleaner before the chunk cache, verbatim: spaCy over the whole prepared text, space
    tokens dropped, then the per-token rules and the phrase/stop filter."""
    s = cleaner._s
    words = [t.text for t in s["tokenizer"](_reference_prepare(text)) if not t.is_space]
    acronyms, stop, index = s["acronyms"], s["stop"], s["phrases"]
    seq: list[tuple[str, bool]] = []
    for word in words:
        money = _placeholder_token(word)
        if money is not None:
            seq.append((money, True))
        elif word in acronyms:
            seq.append((acronyms[word], True))
        elif _CAPS_PLURAL.match(word):
            seq.append((word[:-1].lower(), False))
        else:
            seq.append((cleaner._lemma(word), False))
    out: list[str] = []
    i, n = 0, len(seq)
    while i < n:
        lemma, protected = seq[i]
        matched = False
        for key, output in index.get(lemma, ()):
            size = len(key)
            if i + size <= n and all(seq[i + j][0] == key[j] for j in range(1, size)):
                if output:
                    out.append(output)
                i += size
                matched = True
                break
        if matched:
            continue
        i += 1
        if not protected and (lemma in stop or len(lemma) < cleaner.config.min_token_length
                              or not _LETTER.search(lemma) or lemma.startswith("'")):
            continue
        out.append(lemma)
    return out


_PAIR: list[TextCleaner] = []


def _assert_fast_equals_reference(texts: list[str]) -> None:
    if not _PAIR:  # built once: spaCy setup costs far more than one generated example
        _PAIR.extend([TextCleaner(), TextCleaner()])
    fast, reference = _PAIR
    got = fast.tokens(texts)
    for text, tokens in zip(texts, got):
        assert tokens == _reference_tokens(reference, text), repr(text)
        assert parse_amounts(text) == _reference_amounts(text), repr(text)


def _reference_amounts(text: str) -> list[float]:
    import unicodedata

    from pipeline import clean as c

    text = unicodedata.normalize("NFKC", text or "").translate(c._QUOTES)
    return [c._money_value(m) for m in c._MONEY.finditer(text) if m.group(1) == "£"]


def test_fast_path_equals_reference_on_sample_pages(sample_pages):
    from pipeline.config import ParseConfig
    from pipeline.parse import parse_paths

    arts = parse_paths(sample_pages, ParseConfig()).articles
    texts = [a.headline for a in arts] + [a.standfirst or "" for a in arts]
    texts += [article_text(a) for a in arts]
    assert len(texts) > 200
    _assert_fast_equals_reference(texts)


def test_fast_path_equals_reference_on_ag_news(ag_news_csv):
    import csv

    with open(ag_news_csv, newline="", encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(2500), csv.reader(handle))]
    texts = [row[1] for row in rows] + [row[2] for row in rows] + [f"{row[1]}\n{row[2]}" for row in rows]
    _assert_fast_equals_reference(texts)


_TRICKY = ["£20m", "$1.5bn", "€3k", "£240,000", "U.S.", "Ky.", "can't", "don't", "'s", "NHS", "ICSs",
           "GPs", "Trusts", "e-mail", "co-op", "A&E", "www.nhs.uk", "https://x.org/a?b=1", "10%",
           ":)", "(AP)", "#39;s", "&amp;", "quot;", "<b>", "--", "...", "1990s", "Mr.", "vs.", "U.K.",
           "http://localhost/x", "HTTPS://A", "BBC.co.uk", "Yahoo.COM", "a-b.net/x", "#36;", "x#39;s", "<i>", "</p>", "LONDON (Reuters) -",
           "ＡＢＣ", "＄5", "￡3m", "ﬁnance", "integrated care board", "NHS England", "mental health", "as", "m", "it's", "o'clock",
           # phrases across chunks (joined units, three-chunk phrases, stop phrases, aliases)
           "urgent and emergency care", "Department of Health and Social Care", "health and care", "the Integrator",
           "a & e", "A & E", "chief exec", "per cent", "NHS England's", "integrated care boards", "Care Quality Commission",
           "non-executive director", "secretary of state", "London Eye:", "‘integrated care’", "chief", "the", "care", "and",
           # plain words and one split-off last character ("trust," -> "trust", ",")
           "trust,", "board.", "Cannot,", "gonna.", "Dont", "A.", "Mr.", "NHS.", "Inc.", "St.,", "e.g.", "ok?", "word)"]
_PIECE = st.one_of(st.sampled_from(_TRICKY), st.text(
    alphabet=st.sampled_from(list("aBzQ09.,;:!?'\"()[]-/&£$%#@_+*‘’“”–—…\u00a0\t\n\r\u2009\u3000 \\")),
    max_size=8))
_SEP = st.sampled_from([" ", "  ", "\n", "\t", "\u00a0", " \n ", "", "\r\n", "\u2003", "\u200b"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_PIECE, _SEP), max_size=12))
def test_fast_path_equals_reference_on_generated_text(parts):
    text = "".join(piece + sep for piece, sep in parts)
    _assert_fast_equals_reference([text, text.upper(), text.title()])


# ---- shortcuts past spaCy and past per-token work: each equals what they replace ---------------

_WORD_CASES = ["trust", "Trusts", "NHS", "cannot", "Cannot", "gonna", "Dont", "Im", "trust,", "board.", "A.",
               "Mr.", "U.S.", "NHS.", "Inc.", "St.", "e.g.", "ok?", "ok!", "(word", "word)", "word'", 'word"',
               "it's", "o'clock", "and/or", "well-known", "Mar.", "vs.", "Cannot,", "gonna.", "Dont.", "a.m.",
               "US$", "km", "5km", "can't,", "x", "X.", "Xs", "ICSs.", "ICBs,", "hello:", "hello;", "hi-", "%"]


def test_word_shortcuts_give_spacys_tokens(cleaner):
    tokenizer = cleaner._s["tokenizer"]
    for chunk in _WORD_CASES:
        assert cleaner._words(chunk) == [t.text for t in tokenizer(chunk)], chunk


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aBzQxIiSsTtMm")), min_size=1, max_size=9),
       st.sampled_from(["", *".,:;!?)'\"%-/&$"]))
def test_word_shortcuts_on_generated_words(word, last):
    if not _PAIR:
        _PAIR.extend([TextCleaner(), TextCleaner()])
    cleaner = _PAIR[0]
    chunk = word + last
    assert cleaner._words(chunk) == [t.text for t in cleaner._s["tokenizer"](chunk)]


def test_sub_bare_numeric_equals_the_pattern():
    from pipeline import clean as c

    cases = ["#39;", " #39;s", "a #39;s", "x#39;s", "&#39;", "_#39;", "é#39;", "  #39;", "\u00a0#39;",
             "#39;#40;", "#39; #40;", "#x41;", "#1234567;", "# 39;", "#39", ""]
    for text in cases:
        assert c._sub_bare_numeric(text) == c._BARE_NUMERIC.sub(c._bare_numeric, text), text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("#x39;&a1 _é\t")), max_size=20))
def test_sub_bare_numeric_on_generated_text(text):
    from pipeline import clean as c

    assert c._sub_bare_numeric(text) == c._BARE_NUMERIC.sub(c._bare_numeric, text)


def test_phrases_across_chunks_equal_whole_text_matching():
    texts = ["Urgent and emergency care: the Department of Health and Social Care, chief exec and the Integrator",
             "NHS England's integrated care boards (ICBs) and a & e; per cent of health and care staff",
             "Integrated care integrated care boards integrated care systems integrated",
             "The chief executive's chief; chief. Chief executives quit", "the the Integrator a & a & e"]
    _assert_fast_equals_reference(texts + [t.lower() for t in texts] + [t.upper() for t in texts])


def test_bounded_chunk_caches_give_the_same_tokens(monkeypatch):
    from pipeline import clean as c

    texts = [f"{h} and the Integrator, chief executive number {i}" for i, h in enumerate(HEADLINES * 3)]
    want = TextCleaner().tokens(texts)
    monkeypatch.setattr(c, "_CHUNK_CACHE_SIZE", 5)
    small = TextCleaner(CleanConfig(batch_size=4))
    assert list(small.iter_tokens(texts)) == want
    assert len(small._s["alone"]) < 80  # cleared between batches


def test_blurbs_need_two_different_headlines():
    arts = [Article(id="a", headline="One", standfirst="Same  text."),
            Article(id="b", headline="one", standfirst="same text."),  # same headline, normalised
            Article(id="c", headline="Two", standfirst="Other text."),
            Article(id="d", headline="Three", standfirst="OTHER text.")]
    assert find_blurbs(arts) == frozenset({"other text."})
    assert find_blurbs(arts, min_headlines=3) == frozenset()
    result = clean_articles(arts, CleanConfig())
    assert result.counts["blurb_articles"] == 2 and arts[0].tokens == ["text"] and arts[2].tokens == []


def test_a_full_cache_keeps_the_texts_of_the_batch_it_answers():
    """Regression (1M articles): a batch of cached and new texts that overflows the cache must
    still answer for the cached ones (the cache was cleared and they were looked up: KeyError)."""
    cleaner = TextCleaner(CleanConfig(cache_size=4))
    first = cleaner.tokens(["Trust deficit grows", "GP access falls", "Waiting lists grow"])
    mixed = ["GP access falls", "Board chair quits", "Nurse pay rises", "Trust deficit grows"]
    assert cleaner.tokens(mixed) == TextCleaner().tokens(mixed)
    assert cleaner.tokens(["Trust deficit grows"]) == first[:1]
