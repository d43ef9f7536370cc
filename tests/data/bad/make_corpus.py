"""Write the bad-input corpus: one file per kind of bad input, and ``expected.json`` with the message each must give.

Run ``python tests/data/bad/make_corpus.py`` after changing a case; the files are committed, so the tests read
exactly these bytes. Each expected message is a regular expression matched against the CLI's error output (in
English, ``--lang en``; ``message_zh``, where given, in Chinese, the default); it starts with the file's name and,
where the problem has one, the line and the field (``file:line: field: reason``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent


def jsonl(*rows: object) -> bytes:
    return "".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def xlsx(build: Callable[[openpyxl.Workbook], None]) -> bytes:
    book = openpyxl.Workbook()
    build(book)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def _empty_first_row(book: openpyxl.Workbook) -> None:
    sheet = book.active
    sheet.append([])
    sheet.append(["id", "title"])
    sheet.append(["X1", "一种电池"])
    sheet["A1"] = None


def _formula(book: openpyxl.Workbook) -> None:  # openpyxl writes formulas without cached values, as scripts do
    sheet = book.active
    sheet.append(["id", "title"])
    sheet.append(["X1", '=CONCATENATE("一种", "电池")'])


def _second_sheet(book: openpyxl.Workbook) -> None:
    book.active.title = "说明"
    data = book.create_sheet("Data")
    data.append(["id", "title"])
    data.append(["X1", "一种电池"])


def _outside_header(book: openpyxl.Workbook) -> None:
    sheet = book.active
    sheet.append(["id", "title"])
    sheet.append(["X1", "一种电池", "stray"])


def _xlsx_bad_date(book: openpyxl.Workbook) -> None:
    sheet = book.active
    sheet.append(["公开号", "名称", "申请日"])
    sheet.append(["X1", "一种电池", "2021-13-45"])


def _damaged_xlsx() -> bytes:
    out = BytesIO()
    import zipfile

    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "a zip archive, but no workbook inside")
    return out.getvalue()


JP = "id,title\nJP1,データベース検索システムおよびその方法\nJP2,画像処理装置、画像処理方法、及びプログラム\n"

# name: (kind, bytes, expected message pattern (after the file's name))
CASES: dict[str, tuple[str, bytes, str]] = {
    # defect 3: silent loss and corruption
    "unclosed_quote.csv": ("patents", b'id,title\nA1,"a title whose quote never closes\nA2,two\nA3,three\n',
                           r":2: malformed CSV \(a quote opened on line 2 is never closed"),
    "quote_then_text.csv": ("patents", b'id,title\nA1,"ok"x\nA2,two\n', r":2: malformed CSV \(',' expected"),
    "shift_jis.csv": ("patents", JP.encode("shift_jis"), r": not UTF-8, and read as GB18030 .*Shift-JIS"),
    "nul_after_64k.jsonl": ("patents", jsonl(*[{"id": f"N{i}", "title": "一种电池" * 20} for i in range(600)])
                            + b'{"id": "NUL", "title": "a\x00b"}\n',
                            r":601: binary data \(a NUL byte at offset [\d,]+\): not a text file"),
    "nul_after_64k.csv": ("patents", b"id,title\n" + b"".join(f"N{i},{'一种电池' * 20}\n".encode() for i in range(600))
                          + b"NUL,a\x00b\n", r":602: binary data \(a NUL byte at offset [\d,]+\): not a text file"),
    "duplicate_key.jsonl": ("patents", b'{"id": "A1", "title": "first", "title": "second"}\n',
                            r":1: title: key given twice in one object"),
    "duplicate_key.json": ("patents", b'[{"id": "A1", "title": "ok"},\n {"id": "A2", "id": "A3", "title": "x"}]',
                           r":2: id: key given twice in one object"),
    "zero_width_id.jsonl": ("patents", jsonl({"id": "CN114243020\u200bA", "title": "一种电池"}),
                            r":1: id: invisible or control character U\+200B at position 12"),
    "bidi_override_id.jsonl": ("patents", jsonl({"id": "CN1\u202eA2", "title": "一种电池"}),
                               r":1: id: invisible or control character U\+202E"),
    "control_char_id.csv": ("patents", b"id,title\nA\x1b1,ok\n", r":2: id: invisible or control character U\+001B"),
    "dot_dot_id.jsonl": ("patents", jsonl({"id": "..", "title": "一种电池"}), r":1: id: '\.\.' is a path step"),
    "dot_id.csv": ("patents", b"id,title\n.,ok\n", r":2: id: '\.' is a path step"),
    "invisible_title.jsonl": ("patents", jsonl({"id": "A1", "title": "\u200b\u200c\u2060"}),
                              r":1: a patent needs a title or an abstract"),
    "invisible_demand_title.jsonl": ("demands", jsonl({"id": "D1", "title": "\u200b\ufeff"}),
                                     r":1: title: required, but empty or missing"),
    # defect 4: hostile JSON
    "deep_nesting.json": ("patents", b"[" * 100_000 + b"]" * 100_000,
                          r":1: invalid JSON \(nested deeper than 64 levels at column 65\)"),
    "deep_nesting.jsonl": ("patents", b'{"id": "A1", "title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
                           r":1: invalid JSON \(nested deeper than 64 levels"),
    "huge_integer.jsonl": ("patents", b'{"id": "A1", "title": "ok", "price": ' + b"9" * 5000 + b"}\n",
                           r":1: invalid JSON \(a number of 5,000 digits at column 38\)"),
    "huge_integer.json": ("patents", b'[{"id": "A1",\n "title": "ok",\n "price": ' + b"9" * 5000 + b"}]",
                          r":3: invalid JSON \(a number of 5,000 digits at column 11\)"),
    # defect 5: IPC codes that are not codes (the printed forms are accepted: tests/test_ingest.py)
    "invalid_ipc.csv": ("patents", "id,title,ipc\nA1,一种电池,H01M 4/58; not-a-code\n".encode(),
                        r":2: ipc: not an IPC/CPC code: 'not-a-code'"),
    "invalid_ipc.jsonl": ("patents", jsonl({"id": "A1", "title": "ok", "ipc": ["Z99Q"]}),
                          r":1: ipc: not an IPC/CPC code: 'Z99Q'"),
    # defect 11: messages that used to mislead
    "a_directory.jsonl": ("patents", b"", r": a directory, not a file"),
    "utf16_bom.csv": ("patents", "\ufeffid,title\nA1,一种电池\n".encode("utf-16-le"),
                      r": UTF-16 text: save it as UTF-8"),
    "utf16be_no_bom.csv": ("patents", "id,title\nA1,一种电池\n".encode("utf-16-be"), r": UTF-16 text"),
    "xlsx_empty_first_row.xlsx": ("patents", xlsx(_empty_first_row),
                                  r":1: row 1 of sheet 'Sheet' is empty: the column names must be on row 1"),
    "xlsx_formula_no_value.xlsx": ("patents", xlsx(_formula), r":2: title: formula '=CONCATENATE.*has no saved value"),
    "xlsx_second_sheet.xlsx": ("patents", xlsx(_second_sheet),
                               r": no records on the first sheet '说明' \(only the first sheet is read\); "
                               r"sheet 'Data' has data"),
    "xlsx_outside_header.xlsx": ("patents", xlsx(_outside_header), r":2: a value in column C, which has no name"),
    "table.txt": ("patents", b"id,title\nA1,ok\n", r": unsupported file type '\.txt' .*name it \.csv"),
    "long_claims.csv": ("patents", b"id,title,claims\nA1,ok," + b"x" * 250_000 + b"\n",
                        r":2: claims: String should have at most 200000 characters"),
    # the rest of the kinds: what was already refused, kept refused
    "empty.jsonl": ("patents", b"", r": empty file: no records"),
    "blank_lines.jsonl": ("patents", b"\n\n  \n", r": no records \(only a header, or blank\)"),
    "header_only.csv": ("patents", b"id,title\n", r": no records"),
    "binary_garbage.csv": ("patents", bytes(range(256)) * 40, r"(:1)?: binary data"),
    "control_chars.csv": ("patents", bytes(range(1, 32)) * 100, r": binary data \(control characters\)"),
    "latin1.csv": ("patents", b"id,title\nA1,caf\xe9 cr\xe8me\xff\x80\n", r":2: not UTF-8 or GB18030 text"),
    "not_a_zip.xlsx": ("patents", b"this is no workbook at all", r": not an XLSX workbook \(not a zip archive\)"),
    "damaged.xlsx": ("patents", _damaged_xlsx(), r": unreadable XLSX workbook"),
    "xlsx_bad_date.xlsx": ("patents", xlsx(_xlsx_bad_date), r":2: 申请日: "),
    "report.pdf": ("patents", b"%PDF-1.4 not a record file", r": unsupported file type '\.pdf'"),
    "no_suffix": ("patents", b"id,title\nA1,ok\n", r": a file name without a suffix: the suffix tells the format"),
    "unknown_column.csv": ("patents", "公开号,名称,备注\nA1,一种电池,x\n".encode(), r":1: 备注: unknown column"),
    "two_columns_one_field.csv": ("patents", "title,名称,id\na,b,A1\n".encode(),
                                  r":1: 名称: a second column for field 'title'"),
    "too_many_cells.csv": ("patents", b"id,title\nA1,ok,extra\n", r":2: 3 cells but the header has 2 columns"),
    "missing_title.jsonl": ("patents", jsonl({"id": "A1", "title": "ok"}, {"id": "A2"}),
                            r":2: a patent needs a title or an abstract"),
    "missing_id.csv": ("patents", b"id,title\n,ok\n", r":2: id: required, but empty or missing"),
    "wrong_type.jsonl": ("patents", jsonl({"id": "A1", "title": "ok", "ipc": 5}), r":1: ipc: .*valid list"),
    "bad_date.jsonl": ("patents", jsonl({"id": "A1", "title": "ok", "application_date": "2021-02-30"}),
                       r":1: application_date: .*date"),
    "duplicate_id.jsonl": ("patents", jsonl({"id": "A1", "title": "x"}, {"id": "A1", "title": "y"}),
                           r":2: id: duplicate id 'A1' \(first at line 1\)"),
    "truncated_line.jsonl": ("patents", b'{"id": "A1", "title": "ok"}\n{"id": "A2", "title": "o\n',
                             r":2: invalid JSON \(Unterminated string"),
    "unknown_field.jsonl": ("patents", jsonl({"id": "A1", "title": "ok", "colour": "red"}),
                            r":1: colour: unknown column"),
    "array_line.jsonl": ("patents", b'["A1", "title"]\n', r":1: expected a JSON object, got an array"),
    "string_document.json": ("patents", b'"just a string"', r":1: expected a JSON array of objects, got a string"),
    "bad_enum.jsonl": ("patents", jsonl({"id": "A1", "title": "ok", "applicant_type": "alien"}),
                       r":1: applicant_type: Input should be"),
    "id_with_space.jsonl": ("patents", jsonl({"id": "A 1", "title": "ok"}),
                            r":1: id: ' ' at position 2: an id has no spaces"),
    "id_with_slash.csv": ("patents", b"id,title\nA/1,ok\n", r":2: id: '/' at position 2: an id has no spaces"),
    "long_title.jsonl": ("patents", jsonl({"id": "A1", "title": "长" * 1001}),
                         r":1: title: String should have at most 1000 characters"),
    "too_many_codes.jsonl": ("patents", jsonl({"id": "A1", "title": "ok", "ipc": ["H01M"] * 201}),
                             r":1: ipc: List should have at most 200 items"),
    "nan_price.jsonl": ("patents", b'{"id": "A1", "title": "ok", "price": NaN}\n', r":1: price: Input should be"),
    "demand_unknown_field.csv": ("demands", "需求编号,需求名称,申请人\nD1,防起球,某公司\n".encode(),
                                 r":1: 申请人: unknown column"),
}

# The Chinese form of some of the messages (the CLI's default language; --lang en gives the English above)
CHINESE = {
    "unclosed_quote.csv": r":2: CSV 格式错误（第 2 行开始的引号没有闭合",
    "shift_jis.csv": r": 不是 UTF-8，按 GB18030 读也不是中文：看起来是Shift-JIS（日文）编码",
    "nul_after_64k.jsonl": r":601: 二进制数据（偏移 [\d,]+ 处有 NUL 字节）：不是文本文件",
    "duplicate_key.jsonl": r":1: title: 同一对象中这个键出现了两次",
    "zero_width_id.jsonl": r":1: id: 第 12 个字符是不可见字符或控制字符 U\+200B",
    "dot_dot_id.jsonl": r":1: id: '\.\.' 是路径中的一步，不能作编号",
    "deep_nesting.json": r":1: 无效的 JSON（第 65 列：嵌套超过 64 层）",
    "huge_integer.jsonl": r":1: 无效的 JSON（第 38 列：一个 5,000 位的数字）",
    "invalid_ipc.csv": r":2: ipc: 不是 IPC/CPC 分类号：'not-a-code'",
    "a_directory.jsonl": r": 这是一个文件夹，不是文件",
    "utf16_bom.csv": r": UTF-16 编码的文本：请另存为 UTF-8",
    "xlsx_second_sheet.xlsx": r": 第一个工作表 '说明' 中没有记录（只读取第一个工作表）；工作表 'Data' 有数据",
    "table.txt": r": 不支持的文件类型 '\.txt'.*请命名为 \.csv",
    "long_claims.csv": r":2: claims: 最多 200000 个字符",
    "unknown_column.csv": r":1: 备注: 未知的列",
    "too_many_cells.csv": r":2: 这一行有 3 个单元格，但表头只有 2 列",
    "missing_id.csv": r":2: id: 必填，但为空或缺失",
    "duplicate_id.jsonl": r":2: id: 重复的编号 'A1'（首次出现在第 1 行）",
    "truncated_line.jsonl": r":2: 无效的 JSON（第 \d+ 列：字符串没有结束的引号）",
    "too_many_codes.jsonl": r":1: ipc: 最多 200 项，实际 \d+ 项",
}


def main() -> None:
    for old in HERE.iterdir():
        if old.name not in ("make_corpus.py", "README.md"):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    expected = {}
    for name, (kind, data, pattern) in CASES.items():
        path = HERE / name
        if name == "a_directory.jsonl":
            path.mkdir()
            (path / "records.jsonl").write_bytes(jsonl({"id": "A1", "title": "inside a directory"}))
        else:
            path.write_bytes(data)
        re.compile(pattern)
        expected[name] = {"kind": kind, "message": pattern}
        if name in CHINESE:
            re.compile(CHINESE[name])
            expected[name]["message_zh"] = CHINESE[name]
    (HERE / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"{len(CASES)} bad inputs written to {HERE}")


if __name__ == "__main__":
    main()
