"""The knob dataclasses of gsf/ops/_knobs.py are the one source of every temporal knob's default, valid values
and meaning: the modules, the factory and the registry read them."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from gsf.errors import GSFConfigError
from gsf.ops import (
    KNOB_CLASSES,
    KNOBS,
    TEMPORAL_MODULES,
    GateShift,
    GateShiftFuse,
    GSFKnobs,
    GSMKnobs,
    TAMKnobs,
    TemporalAdaptive,
    TemporalInterlace,
    TemporalShift,
    TINKnobs,
    TSMKnobs,
    make_temporal_module,
)
from gsf.ops._knobs import KNOB_SPECS
from gsf.ops.reference import GateShiftFuseReference

# A value outside each knob's valid values.
BAD = {"groups": 3, "gate": "temporal", "fusion": "concat", "channel_fraction": 1.5, "zero_init_gate": 1,
       "shift_fraction": 0.75, "tam_kernel_size": 4, "tam_global_expansion": 0, "tam_local_reduction": -1,
       "tin_shift_div": 0}


def _cases():
    return [(cls, name) for cls in KNOB_CLASSES for name in cls.specs()]


def test_every_knob_has_a_bad_value_here():
    assert set(BAD) == set(KNOB_SPECS)


@pytest.mark.parametrize("cls", KNOB_CLASSES)
def test_every_knob_has_a_default_a_meaning_and_valid_values(cls):
    defaults = cls()
    for name, spec in cls.specs().items():
        assert getattr(defaults, name) == spec.default
        assert spec.doc and "\n" not in spec.doc
        assert spec.allowed()
        spec.check(name, spec.default)  # the default is valid
        for choice in spec.choices or ():
            cls(**{name: choice})


@pytest.mark.parametrize(("cls", "name"), _cases())
def test_a_bad_value_names_the_knob_the_value_and_the_valid_values(cls, name):
    spec = cls.specs()[name]
    with pytest.raises(GSFConfigError) as err:
        cls(**{name: BAD[name]}, layer_name="layer2.1")
    message = str(err.value)
    assert name in message and repr(BAD[name]) in message and "layer2.1" in message
    assert spec.allowed() in message


@pytest.mark.parametrize("cls", KNOB_CLASSES)
def test_knob_objects_are_frozen(cls):
    knobs = cls()
    name = next(iter(cls.specs()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(knobs, name, cls.specs()[name].default)


def test_a_group_count_must_be_an_int_not_a_bool_or_float():
    for value in (True, 2.0):
        with pytest.raises(GSFConfigError, match="groups="):
            GSFKnobs(groups=value)


def test_zero_init_gate_none_is_each_kinds_own_start():
    assert GSMKnobs().gate_starts_at_zero and not GSFKnobs().gate_starts_at_zero
    assert not GSMKnobs(zero_init_gate=False).gate_starts_at_zero
    assert GSFKnobs(zero_init_gate=True).gate_starts_at_zero


# (module, its knob class, constructor argument -> knob name)
SIGNATURES = [
    (GateShiftFuse, GSFKnobs, {name: name for name in GSFKnobs.specs()}),
    (GateShiftFuseReference, GSFKnobs, {name: name for name in GSFKnobs.specs()}),
    (GateShift, GSMKnobs, {name: name for name in GSMKnobs.specs()}),
    (TemporalShift, TSMKnobs, {"shift_fraction": "shift_fraction"}),
    (TemporalAdaptive, TAMKnobs, {"kernel_size": "tam_kernel_size", "global_expansion": "tam_global_expansion",
                                  "local_reduction": "tam_local_reduction"}),
    (TemporalInterlace, TINKnobs, {"shift_div": "tin_shift_div"}),
]


@pytest.mark.parametrize(("module", "cls", "arguments"), SIGNATURES, ids=lambda v: getattr(v, "__name__", ""))
def test_module_constructors_take_their_defaults_from_the_knob_class(module, cls, arguments):
    parameters = inspect.signature(module.__init__).parameters
    assert set(arguments.values()) == set(cls.specs())
    for argument, knob in arguments.items():
        assert parameters[argument].default == cls.specs()[knob].default, argument


def test_the_registry_reads_each_kinds_knobs_from_its_knob_class():
    assert list(KNOBS) == list(KNOB_SPECS)
    for kind in TEMPORAL_MODULES.values():
        names = [] if kind.knob_class is None else list(kind.knob_class.specs())
        assert [knob.name for knob in kind.knobs] == names
        assert all(knob.default == KNOB_SPECS[knob.name].default for knob in kind.knobs)
    assert {kind.knob_class for kind in TEMPORAL_MODULES.values()} - {None} == set(KNOB_CLASSES)


@pytest.mark.parametrize("kind", ["gsm", "gsf"])
@pytest.mark.parametrize("zero_init_gate", [None, False, True])
def test_the_factory_passes_zero_init_gate_none_as_the_kinds_own_start(kind, zero_init_gate):
    module = make_temporal_module(kind, 16, zero_init_gate=zero_init_gate)
    zeroed = bool(module.conv3D.weight.abs().sum() == 0)
    assert zeroed is (kind == "gsm" if zero_init_gate is None else zero_init_gate)
