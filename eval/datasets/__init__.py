"""Labelled evaluation sets in the BEIR layout, built from the bundled sample by ``python -m eval.datasets.build``."""
