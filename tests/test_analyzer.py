"""Bilingual analysis: mixed text token by token, traditional folding, full-width, formulas, numbers."""

from __future__ import annotations

import pytest

from indexes.analyzer import Analyzer, AnalyzerConfig, get_analyzer


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return get_analyzer(AnalyzerConfig())


def test_mixed_chinese_english_token_by_token(analyzer: Analyzer) -> None:
    terms = analyzer.tokenize("石墨烯 graphene 散热膜")
    assert {"石墨", "graphen", "散热"} <= set(terms)  # English stemmed, Chinese segmented, side by side
    # no CJK term swallowed Latin letters or the reverse
    assert all(t.isascii() or not any(c.isascii() and c.isalpha() for c in t) for t in terms)


def test_mixed_text_without_spaces(analyzer: Analyzer) -> None:
    terms = analyzer.tokenize("用于5G基站的GaN功放")
    assert "5g" in terms and "gan" in terms and "基站" in terms
    assert "的" not in terms  # stop word


def test_traditional_folds_to_simplified(analyzer: Analyzer) -> None:
    assert analyzer.tokenize("鋰電池") == analyzer.tokenize("锂电池")
    assert "锂电池" in analyzer.tokenize("鋰電池正極材料")


def test_full_width_folds_to_half_width(analyzer: Analyzer) -> None:
    assert analyzer.tokenize("ＬｉＦｅＰＯ４正极材料") == analyzer.tokenize("LiFePO4正极材料")
    assert "18650" in analyzer.tokenize("１８６５０型电池")


def test_chemical_formulas_and_numbers_kept_whole(analyzer: Analyzer) -> None:
    terms = analyzer.tokenize("LiNi0.8Co0.1Mn0.1O2 coated with SiO2 at 3.5 V, H2O2 and NaCl")
    for expected in ("lini0.8co0.1mn0.1o2", "sio2", "3.5", "h2o2", "nacl"):
        assert expected in terms, expected


def test_english_stemming_and_stopwords(analyzer: Analyzer) -> None:
    assert analyzer.tokenize("Scheduling of the threads") == ["schedul", "thread"]
    assert analyzer.tokenize("processors") == analyzer.tokenize("processor")


def test_hyphenated_words_split_but_model_numbers_kept(analyzer: Analyzer) -> None:
    assert analyzer.tokenize("lithium-ion") == ["lithium", "ion"]
    assert analyzer.tokenize("GPT-4") == ["gpt-4"]


def test_patent_boilerplate_removed(analyzer: Analyzer) -> None:
    terms = analyzer.tokenize("一种锂电池，其特征在于，所述正极包括磷酸铁锂")
    assert "所述" not in terms and "一种" not in terms
    assert "正极" in terms and "锂电池" in terms


def test_patent_user_dictionary_keeps_domain_words_whole() -> None:
    with_dict = get_analyzer(AnalyzerConfig()).tokenize("一种锰酸锂的制备方法")
    without = get_analyzer(AnalyzerConfig(user_dict=None)).tokenize("一种锰酸锂的制备方法")
    assert "锰酸锂" in with_dict and "锰酸锂" not in without


def test_config_round_trip_and_validation() -> None:
    config = AnalyzerConfig(cjk_mode="accurate", stopwords=False)
    assert AnalyzerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown analyzer settings"):
        AnalyzerConfig.from_dict({**config.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="cjk_mode"):
        AnalyzerConfig.from_dict({**config.to_dict(), "cjk_mode": "fast"})


def test_accurate_mode_emits_no_subwords() -> None:
    search = get_analyzer(AnalyzerConfig()).tokenize("锂离子电池")
    accurate = get_analyzer(AnalyzerConfig(cjk_mode="accurate")).tokenize("锂离子电池")
    assert len(search) > len(accurate)
