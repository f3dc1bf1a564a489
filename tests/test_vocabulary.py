"""gsf.vocabulary is the one definition the configuration, the ops and the data readers use."""

from gsf.vocabulary import DATASET_NAMES, PUBLISHED_NUM_CLASSES, TEMPORAL_KINDS


def test_every_layer_uses_the_same_vocabularies():
    from gsf.data import DATASETS
    from gsf.engine.config import DataConfig, ModelConfig
    from gsf.ops import TEMPORAL_KINDS as OPS_KINDS

    assert OPS_KINDS is TEMPORAL_KINDS
    assert set(DATASETS) == set(DATASET_NAMES)
    choices = {f.name: f.metadata.get("choices")
               for cls in (ModelConfig, DataConfig) for f in cls.__dataclass_fields__.values()}
    assert choices["temporal"] is TEMPORAL_KINDS and choices["dataset"] is DATASET_NAMES


def test_published_class_counts_are_those_of_the_reference_sheet():
    # docs/data-formats.md: 174 (SSv1, SSv2), 48 (Diving48), 400 (Kinetics), 97 verbs and 300 nouns (EPIC-100)
    assert PUBLISHED_NUM_CLASSES == {"ssv1": 174, "ssv2": 174, "diving48": 48, "kinetics400": 400,
                                     "epic100": {"verb": 97, "noun": 300}, "list": 174}
