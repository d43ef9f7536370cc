"""Holders named in offer texts: the phrasings read, and organisations named only as testers, parents or examples."""

from __future__ import annotations

import pytest

from matcher.holders import holder_in_text

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
