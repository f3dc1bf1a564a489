"""Short variant names, kept importable from here for the sweep code: they live in :mod:`gsf.variant_names`,
below every layer that names runs (the sweep runner tags runs with them, ``gsf report`` titles rows)."""

from gsf.variant_names import FUSION_NAMES, INSERTION_KNOBS, kind_facts, paper_setting, variant_name

__all__ = ["FUSION_NAMES", "INSERTION_KNOBS", "kind_facts", "paper_setting", "variant_name"]
