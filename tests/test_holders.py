"""Holders named in offer texts: the phrasings read, and organisations named only as testers, parents or examples;
and a holder's key, one per name however it is spelt, kept by the store beside each applicant."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.holders import holder_in_text, name_key
from matcher.records import Patent
from matcher.store import Store

# Phrases from real Zhibei offers (shared/data zhibei_market technical_achievements_*), cut around the name.
READ = [
    ("本产品根据泉州师范学院专利技术（ZL201720001285.X），利用光", "泉州师范学院", "patent-holder"),
    ("主要完成单位：宁夏农林科学院农作物研究所、宁夏科泰种业有限公司", "宁夏农林科学院农作物研究所", "unit-label"),
    ("育种者：山东鑫丰种业有限公司。品种来源：一代杂交", "山东鑫丰种业有限公司", "unit-label"),
    ("该品种知识产权归武威市农业科学研究院所有", "武威市农业科学研究院", "unit-label"),
    ("项目承担单位为青海省畜牧兽医科学院。莜麦亦称裸燕麦", "青海省畜牧兽医科学院", "unit-label"),
    ("“农丰2号”玉米新品种由扎兰屯市农丰科技研究所育成，具有独立知识产权", "扎兰屯市农丰科技研究所", "made-by"),
    ("由东华大学机械学院研发的碳纤维立体管状织物织造装备", "东华大学机械学院", "made-by"),
    ("金凯5号是甘肃金源种业股份有限公司选育出的中晚熟玉米杂交种", "甘肃金源种业股份有限公司", "made-by"),
    ("经济效应。上海航天测控通信研究所研制的VDES系统", "上海航天测控通信研究所", "made-by"),
]
NOT_READ = [
    "其母本是南京农业大学选育的小麦品系92R137",  # the breeder of a parent line, not the holder
    "鄂早19是以浙江省绍兴农业科学院选育的早糯97-27变异株为母本",
    "经甘肃省农业科学院植物保护研究所和西北农林科技大学鉴定",  # testers
    "本项目所涉技术已在国内知名高校（例如北京大学、浙江大学、上海交通大学等）",  # examples
    "该项目是公司自主研发，属于自选项目",  # no name
    "",
]


@pytest.mark.parametrize(("text", "name", "rule"), READ)
def test_holders_read(text: str, name: str, rule: str) -> None:
    assert holder_in_text(text) == (name, rule)


@pytest.mark.parametrize("text", NOT_READ)
def test_not_holders(text: str) -> None:
    assert holder_in_text(text) is None


@pytest.mark.parametrize(("a", "b"), [
    ("华为技术有限公司", "华为技术"),
    ("NVIDIA CORPORATION", "Nvidia Corp."),
    ("ＮＶＩＤＩＡ Corporation", "nvidia"),  # full-width letters
    ("泉州师范学院", " 泉州 师范学院。"),
    ("甘肃金源种业股份有限公司", "甘肃金源种业有限责任公司"),
])
def test_spellings_of_one_holder_have_one_key(a: str, b: str) -> None:
    assert name_key(a) == name_key(b) != ""


@pytest.mark.parametrize(("a", "b"), [("华为技术有限公司", "华为终端有限公司"), ("泉州师范学院", "泉州师范"),
                                      ("Intel Corporation", "Intellon Corporation")])
def test_different_holders_keep_different_keys(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def keys(store: Store) -> list[tuple[str, str, int]]:
    return store._db.execute("SELECT p.id, v.value, v.pos FROM record_values v JOIN patents p ON p.rid = v.rid "
                             "WHERE v.kind='patents' AND v.field='applicant_key' ORDER BY p.id, v.pos").fetchall()


def test_the_store_keeps_each_applicants_key_and_gives_an_older_store_them_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.write_batch("patents", [
            Patent(id="US1", title="a", applicants=["NVIDIA CORPORATION", "有限公司"]),
            Patent(id="US2", title="b", applicants=["Nvidia Corp."])], "t.jsonl")
        written = keys(store)
        # a legal form alone has no key; each key sits at its applicant's position
        assert written == [("US1", "nvidia", 0), ("US2", "nvidia", 0)]
        store.write_batch("patents", [Patent(id="US2", title="b", applicants=["Intel Corp", "NVIDIA"])], "t2.jsonl")
        assert keys(store) == [("US1", "nvidia", 0), ("US2", "intel", 0), ("US2", "nvidia", 1)]
        # as a store from before the keys: none kept, no marker
        with store.transaction() as db:
            db.execute("DELETE FROM record_values WHERE field='applicant_key'")
            db.execute("DELETE FROM meta WHERE key='keyed_values'")
    with Store(tmp_path / "s.sqlite") as store:
        assert keys(store) == [("US1", "nvidia", 0), ("US2", "intel", 0), ("US2", "nvidia", 1)]
    with Store(tmp_path / "s.sqlite") as store:  # once: opening again adds nothing
        assert len(keys(store)) == 3
