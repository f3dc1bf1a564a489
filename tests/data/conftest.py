"""Fixtures: tiny data sets in the official release layouts, built by tests/data/builders.py."""

from .builders import (  # noqa: F401
    diving48_root,
    epic_root,
    kinetics_root,
    ssv1_root,
    ssv2_root,
    tsn_list_root,
)
