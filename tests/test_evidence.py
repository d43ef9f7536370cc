"""Pair evidence (matcher/evidence.py): the demand title's words in the patent, across languages through dictionary
glosses; the patent title's words in the demand; design patents answer no need."""

from __future__ import annotations

import pytest

from matcher.config import RankerConfig
from matcher.evidence import answers_a_need, title_coverage, title_words, topic_coverage
from matcher.full_build import build_snapshot
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.served import Snapshot
from matcher.store import Store
from matcher.workspace import Workspace

THREADS = Patent(id="US1", language="en", title="Synchronization of threads in a cooperative thread array",
                 abstract="Threads of a cooperative thread array on a parallel processor wait at a barrier.")
YARN = Patent(id="US2", language="en", title="Yarn pretreatment before spinning",
              abstract="Cotton yarn is washed and sized before it is spun; the pretreatment line places the yarn.")
WHEAT = Patent(id="CN1", title="冬小麦生长远程智能感知与诊断平台",
               abstract="冬小麦生长的远程监控、物联网传感器与诊断。")
LIFT = Patent(id="CN2", title="一种电梯远程监控装置", abstract="电梯运行状态的无线远程监控装置。")
OTHERS = [Patent(id=f"CN{i}", title=t, abstract=t + "的制备方法。") for i, t in
          enumerate(["锂离子电池正极材料", "铝合金压铸件", "永磁同步电机转子", "焊接机器人", "充电桩"], 10)]


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    ws = Workspace(tmp_path_factory.mktemp("evidence") / "home")
    with Store(ws.store_path) as store:
        store.write_batch("patents", [THREADS, YARN, WHEAT, LIFT, *OTHERS], "test")
    build_snapshot(ws, "patents", dense_model="static-64")  # type: ignore[arg-type]
    s = Searcher(ws, RankerConfig(dense_model="static-64"))
    yield s.snapshot("patents")
    s.close()


def test_a_cross_language_false_friend_has_no_evidence(snap: Snapshot) -> None:
    """Issue 14: 纱线前置处理工艺 <- "Synchronization of threads": 纱线 is yarn, not a GPU thread."""
    yarn = Demand(id="D1", title="纱线前置处理工艺", description="纺纱前纱线的预处理。")
    assert title_coverage(snap, yarn, THREADS) == 0.0
    assert title_coverage(snap, yarn, YARN) >= 0.5  # 纱线 -> yarn, found in the English patent
    assert topic_coverage(snap, yarn, YARN) is None  # across languages: no words to compare the other way


def test_the_patents_topic_must_be_in_the_demand(snap: Snapshot) -> None:
    lift = Demand(id="D2", title="远程监控电梯系统", description="电梯运行的无线远程监控，减少布线。")
    assert title_coverage(snap, lift, WHEAT) > 0  # the long offer text has 远程/监控
    assert topic_coverage(snap, lift, WHEAT) < 0.3  # but it is about winter wheat
    assert topic_coverage(snap, lift, LIFT) >= 0.5 and title_coverage(snap, lift, LIFT) == 1.0


def test_a_word_no_patent_has_weighs_most(snap: Snapshot) -> None:
    """PCB埋容埋阻: a title word nobody offers is the specific need, so a patent on the common word alone is weak."""
    demand = Demand(id="D3", title="充电桩埋容埋阻", description="")
    weights = title_words(snap, demand)
    assert weights["埋容"] == weights["埋阻"] == max(weights.values()) > 0
    assert 0 < title_coverage(snap, demand, OTHERS[4]) <= 0.5  # 充电桩 alone


def test_design_patents_answer_no_need() -> None:
    assert not answers_a_need(Patent(id="USD1", language="en", title="Robot", patent_type="design"))
    assert answers_a_need(Patent(id="US3", language="en", title="Robot", patent_type="invention"))
    assert answers_a_need(Patent(id="US4", language="en", title="Robot"))
