"""Applicant type from names: precision and recall on a hand-labelled list of real names, and the rule file."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from matcher.applicants import RulesError, _load, infer_type, load_rules, rule_files

FIXTURE = Path(__file__).with_name("fixtures") / "applicant_names.tsv"
SHARED = Path(os.environ.get("PMATCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "zhibei_market").is_dir():
        pytest.skip("shared data not present")
    return SHARED


def labelled() -> list[tuple[str, str | None, str]]:
    lines = [line for line in FIXTURE.read_text("utf-8").splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    return [(r["name"], None if r["type"] == "none" else r["type"], r["source"]) for r in rows]


def precision_recall(rows: list[tuple[str, str | None, str]]) -> tuple[float, float, list[str]]:
    right = wrong = missed = 0
    errors = []
    for name, gold, _ in rows:
        found = infer_type(name)
        guess = found[0] if found else None
        if guess is not None and guess == gold:
            right += 1
        elif guess is not None:
            wrong += 1
            errors.append(f"{name}: {guess} ({found[1] if found else ''}), labelled {gold}")
        if gold is not None and guess != gold:
            missed += 1
            if guess is None:
                errors.append(f"{name}: no type, labelled {gold}")
    return right / (right + wrong), right / (right + missed), errors


def test_the_labelled_list_is_what_its_header_says() -> None:
    rows = labelled()
    organisations = [r for r in rows if r[1] != "individual"]
    assert len(organisations) >= 200 and len({r[0] for r in rows}) == len(rows)
    assert {r[1] for r in rows} == {"university", "institute", "company", "individual", None}
    assert all(r[2].split("#")[0] in {
        "zhibei_market/technical_achievements_data_source_part_1.json",
        "zhibei_market/technical_achievements_data_source_part_2.json",
        "zhibei_market/technical_achievements_data_source_part_3.json",
        "zhibei_market/technical_requirements_data_source_part_1.json",
        "uspto_nvidia/nvidia_assignee.csv", "uspto_nvidia/nvidia_inventor.csv"} for r in rows)


def test_labelled_names_occur_in_their_sources(shared_data: Path) -> None:
    import json

    cache: dict[str, list[str]] = {}
    for name, _, source in labelled():
        path, row = source.split("#")
        if path not in cache:
            if path.endswith(".json"):
                cache[path] = [json.dumps(r, ensure_ascii=False) for r in json.loads((shared_data / path).read_text())]
            else:
                with (shared_data / path).open(encoding="utf-8-sig") as f:
                    cache[path] = [" ".join(r) for r in list(csv.reader(f))[1:]]
        text = cache[path][int(row)]
        assert all(part in text for part in name.split(" ")) or name in text, (name, source)


def test_rule_floors_on_the_labelled_list() -> None:
    precision, recall, errors = precision_recall(labelled())
    print(f"applicant type rules on {FIXTURE.name}: precision {precision:.3f}, recall {recall:.3f}; {errors}")
    assert precision >= 0.95, errors
    assert recall >= 0.90, errors


def test_every_applicant_in_the_sample_against_its_source_type(sample_patents: list) -> None:
    # USPTO applicants carry PatentsView's own assignee type: an independent label for every one of them.
    stated = [(p.applicants[0], p.applicant_type) for p in sample_patents
              if p.applicants and p.applicant_type and "applicant_type" not in p.inferred]
    assert len(stated) > 5000
    agree = sum(1 for name, kind in stated if (infer_type(name) or (None,))[0] == kind)
    assert agree / len(stated) >= 0.99
    # the applicants patent-match read from offer texts are all typed, and every type is one of the four
    read = [p for p in sample_patents if "applicants" in p.inferred]
    assert read and all(p.applicant_type for p in read)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("华南理工大学", "university"), ("中国科学院物理研究所", "institute"), ("中国科学院大学", "university"),
     ("清华大学深圳研究生院", "university"), ("北京大学科技开发有限公司", "company"),
     ("浙江大学台州研究院", "institute"),
     ("甘肃省农业科学院", "institute"), ("张伟", "individual"), ("欧阳明华", "individual"),
     ("Massachusetts Institute of Technology", "university"), ("University of California", "university"),
     ("Fraunhofer-Gesellschaft zur Förderung der angewandten Forschung e.V.", "institute"),
     ("Semiconductor Energy Laboratory Co., Ltd.", "company"), ("Samsung Electronics Co., Ltd.", "company"),
     ("Siemens AG", "company"), ("John A. Smith", "individual"), ("NVIDIA CORPORATION", "company")],
)
def test_rules_on_typical_names(name: str, kind: str) -> None:
    assert (infer_type(name) or (None,))[0] == kind


NAVY = "United States of America as represented by the Secretary of the Navy"


@pytest.mark.parametrize("name", ["北京大学第一医院", "江宁区种子管理站", "", NAVY, "某某"])
def test_no_type_rather_than_a_wrong_one(name: str) -> None:
    assert infer_type(name) is None


def test_operator_rules_come_first_and_bad_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text("rules:\n  - {id: my-hospitals, type: institute, suffix: [医院]}\n", encoding="utf-8")
    monkeypatch.setenv("PMATCH_APPLICANT_RULES", str(own))
    assert rule_files()[0] == str(own)
    assert infer_type("北京大学第一医院", load_rules()) == ("institute", "my-hospitals")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: x, type: alien, suffix: [a]}\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"bad\.yaml: rule 'x': type must be"):
        _load((str(bad),))
