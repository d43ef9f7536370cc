"""Synthetic patents and demands for **scale benchmarks only**: real sentences from the bundled sample, recombined.

Never use these records for quality numbers: their texts are shuffled pieces of real ones, so relevance between
them means nothing. What they do keep from ``data/sample/*.jsonl.gz`` is what costs time and memory:

* the language mix (the sample's share of English patents, ~24%) and, per language, the length of the title,
  abstract and claims of a real *template* record (x U(0.8, 1.2)); title-only records (the CN IPC title set)
  give titles and IPC codes, not lengths, because a served corpus holds abstracts;
* the vocabulary and its Zipf shape: every sentence is a real sentence (split at 。；！？ or ". "), so the analyzer,
  the BM25 vocabulary and the posting-list lengths are those of real patent text;
* real IPC/CPC codes (the template's, else those of the nearest real record that has codes, by USE-m3 cosine)
  and the template's other fields (kind, applicants, dates, cooperation modes, industry ...), so facets and
  filters see realistic distributions;
* topical coherence: a record mixes sentences of its template and of two *mates*, drawn from the template's 20
  nearest same-language neighbours by USE-m3 cosine.

Vectors (``with_vectors=True``): each record's vector is the weighted mean of the shipped USE-m3 vectors
(``data/vectors/use-m3.*.npz``) of the real records its sentences came from (weights = their share of the
text), plus Gaussian noise of norm ``noise`` (0.25), normalised. The vectors thus live in the real model's space
with its real anisotropy and cluster structure (random uniform vectors would make ANN recall meaningless), and a
query encoded by USE-m3 finds the synthetic documents made from matching real text.

Records are clearly labelled: ids ``SYN-P-0000001`` / ``SYN-D-0000001``, ``source: "synthetic"``. Generation is
deterministic by seed and prefix-stable: record i depends only on (seed, i // block), so the first 100k of a
1M corpus are the 100k corpus.

    python bench/corpus.py --kind patents --n 100000 --out /tmp/syn.jsonl.gz [--vectors /tmp/syn.npy] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexes.vector_cache import text_hash  # noqa: E402
from matcher.records import Demand, Patent  # noqa: E402
from matcher.store import Collection  # noqa: E402
from matcher.texts import dense_text  # noqa: E402

SAMPLE_DIR = ROOT / "data" / "sample"
VECTORS_DIR = ROOT / "data" / "vectors"
DENSE_TEXT_CHARS = 512  # matcher/ranker.json dense_text_chars: the text whose vector the sample ships
BLOCK = 1024  # records per seeded block
NEIGHBOURS = 20
MIN_SENTENCES = 3  # with MIN_MATE_SENTENCES: two records from one template rarely coincide (the store would drop
MIN_MATE_SENTENCES = 2  # an exact duplicate), even when a template is used ~90 times (1M records, ~11.6k templates)

_ZH_SENT = re.compile(r"[^。；！？!?;]+[。；！？!?;]?")
_EN_SENT = re.compile(r"(?<=[.;])\s+(?=[A-Z(])")
_CLAIM = re.compile(r"(?:^|\n)\s*\d+\s*[.、．]\s*")
# Fields copied from the template record as they are (facets and filters see the real distributions).
PATENT_COPY = ("kind", "applicants", "applicant_type", "legal_status", "application_date", "publication_date",
               "open_licence", "price", "maturity", "cooperation_modes", "industry", "tech_area")
DEMAND_COPY = ("enterprise", "industry", "region", "cooperation_modes", "budget", "posted_date", "expiry_date")


def sentences(text: str, language: str) -> list[str]:
    """Split into sentences (keeping the end punctuation); pieces under 6 characters join the previous one."""
    text = text.strip()
    if not text:
        return []
    parts = _EN_SENT.split(text) if language == "en" else [m.group() for m in _ZH_SENT.finditer(text)]
    out: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if out and len(part) < 6:
            out[-1] += part
        else:
            out.append(part)
    return out


def claim_units(claims: str) -> list[str]:
    """The individual claims of a claims text, numbering removed."""
    return [c.strip() for c in _CLAIM.split(claims) if c.strip()]


@dataclass
class _Source:
    """One real record, cut into the pieces synthetic records are made of."""

    record: dict[str, Any]
    language: str
    title: str
    body: list[str]  # abstract (patents) or description (demands) sentences
    body_chars: int
    claims: list[str] = field(default_factory=list)
    claims_chars: int = 0
    ipc: list[str] = field(default_factory=list)


class SyntheticCorpus:
    """Generates synthetic patents or demands (and optionally their vectors) from the bundled real sample."""

    def __init__(self, kind: Collection = "patents", seed: int = 0, noise: float = 0.25,
                 sample_dir: Path = SAMPLE_DIR, vectors_dir: Path = VECTORS_DIR) -> None:
        self.kind = kind
        self.seed = seed
        self.noise = noise
        model = Patent if kind == "patents" else Demand
        with gzip.open(sample_dir / f"{kind}.jsonl.gz", "rt", encoding="utf-8") as fh:
            raw = [json.loads(line) for line in fh]
        self.vector_header: dict[str, Any] = {}
        vectors = self._sample_vectors(vectors_dir / f"use-m3.{kind}.npz", [
            text_hash(dense_text(model.model_validate(r), DENSE_TEXT_CHARS)) for r in raw])
        self.dim = vectors.shape[1]
        sources: list[_Source] = []
        for r in raw:
            lang = r.get("language", "zh")
            body = r.get("abstract", "") if kind == "patents" else r.get("description", "")
            src = _Source(r, lang, r.get("title", ""), sentences(body, lang), len(body), ipc=list(r.get("ipc", [])))
            if kind == "patents" and r.get("claims"):
                src.claims = claim_units(r["claims"])
                src.claims_chars = len(r["claims"])
            sources.append(src)
        self.sources = sources
        self.vectors = vectors  # float32, unit rows, one per real record
        counts: dict[str, int] = {}
        for s in sources:
            counts[s.language] = counts.get(s.language, 0) + 1
        self.languages = sorted(counts)
        self.language_share = np.array([counts[lang] / len(sources) for lang in self.languages])
        # templates: records with a body (lengths come from them); neighbours: same language, by cosine
        self.templates: dict[str, np.ndarray] = {}
        self.neighbours: dict[str, np.ndarray] = {}
        self.title_donor: dict[int, int] = {}  # a template without a title -> the nearest record with one
        self.ipc_donor: dict[int, int] = {}  # a patent template without IPC codes -> the nearest record with some
        for lang in self.languages:
            idx = np.array([i for i, s in enumerate(sources) if s.language == lang and s.body], dtype=np.int64)
            if idx.size < 3:
                raise ValueError(f"the sample has too few {lang} {kind} with text to recombine ({idx.size})")
            self.templates[lang] = idx
            self.neighbours[lang] = self._nearest(idx, idx, min(NEIGHBOURS, idx.size - 1), exclude_self=True)
            self.title_donor.update(self._donors(idx, lambda src: bool(src.title)))
            if kind == "patents":
                self.ipc_donor.update(self._donors(idx, lambda src: bool(src.ipc)))

    # ------------------------------------------------------------------------------------------ set-up
    def _sample_vectors(self, path: Path, hashes: list[str]) -> np.ndarray:
        with np.load(path) as data:
            self.vector_header = json.loads(bytes(data["meta"]).decode())
            stored = {h.decode(): i for i, h in enumerate(data["hashes"])}
            table = np.asarray(data["vectors"], dtype=np.float32)
        missing = [h for h in hashes if h not in stored]
        if missing:
            raise ValueError(f"{path}: no vector for {len(missing)} sample records (regenerate with "
                             "data/export_vectors.py)")
        out = table[[stored[h] for h in hashes]]
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def _donors(self, templates: np.ndarray, has: Any) -> dict[int, int]:
        """Each template lacking a field (``has(source)`` false) -> the most similar same-language record having it."""
        lang = self.sources[int(templates[0])].language
        donors = np.array([i for i, s in enumerate(self.sources) if s.language == lang and has(s)], dtype=np.int64)
        lacking = np.array([i for i in templates if not has(self.sources[int(i)])], dtype=np.int64)
        if not donors.size or not lacking.size:
            return {}
        nearest = self._nearest(lacking, donors, 1, exclude_self=False)[:, 0]
        return {int(a): int(b) for a, b in zip(lacking, nearest, strict=True)}

    def _nearest(self, queries: np.ndarray, pool: np.ndarray, k: int, exclude_self: bool) -> np.ndarray:
        """Positions (records) of the k most similar pool records for each query record."""
        out = np.empty((queries.size, k), dtype=np.int64)
        pv = self.vectors[pool]
        for start in range(0, queries.size, 1024):
            q = queries[start:start + 1024]
            sims = self.vectors[q] @ pv.T
            if exclude_self:
                sims[pool[None, :] == q[:, None]] = -np.inf
            if k == 1:
                out[start:start + len(q), 0] = pool[np.argmax(sims, axis=1)]
                continue
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
            out[start:start + len(q)] = pool[np.take_along_axis(top, order, axis=1)]
        return out

    # ---------------------------------------------------------------------------------------- records
    def generate(self, n: int, start: int = 0, with_vectors: bool = False
                 ) -> Iterator[tuple[dict[str, Any], np.ndarray | None]]:
        """Records ``start`` .. ``start + n - 1`` as (JSON-ready dict, float32 unit vector or None)."""
        end = start + n
        for block in range(start // BLOCK, (end - 1) // BLOCK + 1 if n > 0 else 0):
            records, vectors = self.block(block, with_vectors)
            base = block * BLOCK
            for j in range(max(start, base), min(end, base + BLOCK)):
                yield records[j - base], (vectors[j - base] if vectors is not None else None)

    def block(self, block: int, with_vectors: bool = False) -> tuple[list[dict[str, Any]], np.ndarray | None]:
        """The ``BLOCK`` records of one seeded block, and their vectors (float32, (BLOCK, dim)) if asked."""
        rng = np.random.default_rng([self.seed, block, 0 if self.kind == "patents" else 1])
        langs = rng.choice(len(self.languages), size=BLOCK, p=self.language_share)
        records: list[dict[str, Any]] = []
        mix = np.zeros((BLOCK, 3), dtype=np.float32)
        who = np.zeros((BLOCK, 3), dtype=np.int64)
        for j in range(BLOCK):
            number = block * BLOCK + j + 1
            lang = self.languages[int(langs[j])]
            record, parts, weights = self._one(rng, lang, number)
            records.append(record)
            who[j], mix[j] = parts, weights
        if not with_vectors:
            return records, None
        vectors = np.einsum("nk,nkd->nd", mix, self.vectors[who])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        noise = rng.standard_normal((BLOCK, self.dim)).astype(np.float32)
        noise *= self.noise / np.linalg.norm(noise, axis=1, keepdims=True)
        vectors += noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return records, vectors

    def _one(self, rng: np.random.Generator, lang: str, number: int
             ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        templates = self.templates[lang]
        pos = int(rng.integers(templates.size))
        t = int(templates[pos])
        nbrs = self.neighbours[lang][pos]
        i, j = int(rng.integers(nbrs.size)), int(rng.integers(nbrs.size - 1))
        parts = np.array([t, nbrs[i], nbrs[j + (j >= i)]], dtype=np.int64)  # two distinct mates
        share = rng.dirichlet((3.0, 1.0, 1.0))  # the template dominates
        tpl = self.sources[t]
        used = np.zeros(3, dtype=np.float32)
        body = self._text(rng, [self.sources[p].body for p in parts], share, tpl.body_chars, used, lang)
        title = self.sources[self.title_donor.get(t, t)].title
        if rng.random() < 0.3:  # a mate's title now and then, so titles are not tied to their template
            title = self.sources[self.title_donor.get(int(parts[int(rng.integers(1, 3))]), t)].title or title
        if self.kind == "patents":
            rec: dict[str, Any] = {"id": f"SYN-P-{number:07d}", "title": title, "abstract": body}
            if tpl.claims:
                claims = self._claims(rng, [self.sources[p].claims for p in parts], share, tpl, used)
                if claims:
                    rec["claims"] = claims
            ipc = tpl.ipc or self.sources[self.ipc_donor.get(t, t)].ipc
            if ipc:
                rec["ipc"] = list(ipc)
            copy = PATENT_COPY
        else:
            rec = {"id": f"SYN-D-{number:07d}", "title": title or body[:30], "description": body}
            copy = DEMAND_COPY
        for key in copy:
            if key in tpl.record:
                rec[key] = tpl.record[key]
        rec["language"] = lang
        rec["source"] = "synthetic"
        weights = used / used.sum() if used.sum() > 0 else np.array([1.0, 0.0, 0.0], dtype=np.float32)
        return rec, parts, weights

    def _text(self, rng: np.random.Generator, pools: list[list[str]], share: np.ndarray, target: int,
              used: np.ndarray, lang: str) -> str:
        """The template's first sentence, then sentences of the three sources, each used at most once, in a random
        order weighted by ``share``, until ~``target`` characters (x U(0.8, 1.2)); at least ``MIN_MATE_SENTENCES``
        come from the mates (when they have them), so two records from one template rarely coincide."""
        goal = max(1, int(target * (0.8 + 0.4 * rng.random())))
        first = pools[0][0] if pools[0] else ""
        src = np.concatenate([np.full(max(len(pools[0]) - 1, 0), 0), np.full(len(pools[1]), 1),
                              np.full(len(pools[2]), 2)]).astype(np.int64)
        idx = np.concatenate([np.arange(1, max(len(pools[0]), 1)), np.arange(len(pools[1])),
                              np.arange(len(pools[2]))]).astype(np.int64)
        # weighted random order without replacement (Efraimidis-Spirakis keys): u ** (1 / weight), largest first
        keys = rng.random(src.size) ** (1.0 / np.maximum(share[src], 1e-6))
        order = np.argsort(-keys, kind="stable")
        out: list[str] = [first] if first else []
        size = len(first)
        used[0] += len(first)
        mates = 0
        mates_available = len(pools[1]) + len(pools[2])
        joiner_len = 1 if lang == "en" else 0
        for k in order.tolist():
            if size >= goal and len(out) >= MIN_SENTENCES and mates >= min(MIN_MATE_SENTENCES, mates_available):
                break
            s_src = int(src[k])
            if size >= goal and s_src == 0:
                continue  # long enough: only mate sentences are still wanted
            sentence = pools[s_src][int(idx[k])]
            out.append(sentence)
            size += len(sentence) + joiner_len
            used[s_src] += len(sentence)
            mates += s_src != 0
        return (" " if lang == "en" else "").join(out)

    def _claims(self, rng: np.random.Generator, pools: list[list[str]], share: np.ndarray, tpl: _Source,
                used: np.ndarray) -> str:
        goal = int(tpl.claims_chars * (0.8 + 0.4 * rng.random()))
        units = [tpl.claims[0]]
        size = len(units[0])
        cum = np.cumsum(share).tolist()
        while size < goal:
            r = rng.random()
            src = 0 if r < cum[0] else 1 if r < cum[1] else 2
            pool = pools[src] or pools[0]
            unit = pool[int(rng.integers(1, len(pool)))] if len(pool) > 1 else pool[0]
            units.append(unit)
            size += len(unit) + 4
        used[0] += len(units[0])
        return "\n".join(f"{i}.{u}" for i, u in enumerate(units, 1))


def write_jsonl(corpus: SyntheticCorpus, n: int, out: Path, vectors_out: Path | None = None) -> dict[str, Any]:
    """Write ``n`` records to ``out`` (JSONL, gzip if it ends in .gz) and their vectors to ``vectors_out`` (.npy,
    float16); returns a summary with the length and language statistics."""
    started = time.perf_counter()
    opener = gzip.open if out.suffix == ".gz" else open
    vecs = (np.lib.format.open_memmap(vectors_out, mode="w+", dtype=np.float16, shape=(n, corpus.dim))
            if vectors_out is not None else None)
    chars = np.zeros(n, dtype=np.int64)
    langs: dict[str, int] = {}
    with opener(out, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
        for i, (rec, vec) in enumerate(corpus.generate(n, with_vectors=vecs is not None)):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            if vecs is not None and vec is not None:
                vecs[i] = vec
            body = rec.get("abstract", rec.get("description", ""))
            chars[i] = len(rec.get("title", "")) + len(body) + len(rec.get("claims", ""))
            langs[rec["language"]] = langs.get(rec["language"], 0) + 1
    if vecs is not None:
        vecs.flush()
    return {"kind": corpus.kind, "n": n, "seed": corpus.seed, "out": str(out),
            "vectors": str(vectors_out) if vectors_out else None, "seconds": round(time.perf_counter() - started, 2),
            "languages": langs, "chars_mean": round(float(chars.mean()), 1) if n else 0.0,
            "chars_p50": float(np.percentile(chars, 50)) if n else 0.0,
            "chars_p90": float(np.percentile(chars, 90)) if n else 0.0,
            "vector_model": corpus.vector_header.get("model"),
            "vector_fingerprint": corpus.vector_header.get("fingerprint")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("patents", "demands"), default="patents")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="JSONL output (.gz to compress)")
    parser.add_argument("--vectors", type=Path, default=None, help="also write vectors here (.npy, float16)")
    args = parser.parse_args(argv)
    corpus = SyntheticCorpus(args.kind, seed=args.seed)
    print(json.dumps(write_jsonl(corpus, args.n, args.out, args.vectors), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
