import math

import pytest

from gsf.engine.config import load_config
from gsf.engine.trainer import lr_factor, scaled_lr


def test_warmup_is_linear_from_the_start_factor():
    kw = dict(epochs=60, warmup_epochs=10, warmup_start_factor=0.1)
    assert lr_factor(0, **kw) == pytest.approx(0.1)
    for e in range(10):
        assert lr_factor(e, **kw) == pytest.approx(0.1 + 0.9 * e / 10)


def test_cosine_after_warmup_reaches_about_zero():
    kw = dict(epochs=60, warmup_epochs=10, warmup_start_factor=0.1)
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    for e in range(10, 60):
        assert lr_factor(e, **kw) == pytest.approx(0.5 * (1 + math.cos(math.pi * (e - 10) / 50)))
    assert 0 < lr_factor(59, **kw) < 1e-2
    assert lr_factor(35, **kw) == pytest.approx(0.5)


def test_no_warmup():
    assert lr_factor(0, epochs=4, warmup_epochs=0, warmup_start_factor=0.1) == pytest.approx(1.0)


def test_lr_scales_linearly_with_batch_and_accumulation():
    c = load_config(None, ["optim.lr=0.01", "optim.base_batch_size=32", "data.batch_size=8",
                           "optim.accumulation_steps=2"], check=False)
    assert scaled_lr(c) == pytest.approx(0.01 * 16 / 32)
