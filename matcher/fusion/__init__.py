"""Rank fusion methods, one per module: reciprocal rank fusion and a convex combination of normalised scores.

A run is a mapping ``doc_id -> score`` (higher is better) from one retriever. A retriever may *abstain* on a
document: it could not have found it (BM25 cannot match a document in another language). Abstention is
not evidence against a document, so each method scores such a document from the retrievers that could
see it, instead of counting the missing retriever as a zero.
"""

from matcher.fusion.convex import convex_fusion
from matcher.fusion.rrf import rrf_fusion

__all__ = ["convex_fusion", "rrf_fusion"]
