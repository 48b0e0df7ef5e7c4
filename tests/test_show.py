"""show_source and glue: what the chapters use to show code and numbers."""

from __future__ import annotations

import pytest

import bertlab
from bertlab.show import get_source
from bertlab.train import lr_lambda


def test_show_source_prints_the_real_code(capsys):
    assert bertlab.show_source(lr_lambda) is None  # in a terminal: printed, nothing returned
    out = capsys.readouterr().out
    assert out.startswith("def lr_lambda(config: TrainConfig)")
    assert "warmup" in out


def test_source_has_html_with_the_file_and_line():
    src = get_source(lr_lambda)
    html = src._repr_html_()
    assert "bertlab/train.py, line" in html
    assert "lr_lambda" in html and "<span" in html  # highlighted
    assert str(src) == src.code


def test_show_source_of_a_builtin_is_a_clear_error():
    with pytest.raises(TypeError, match="cannot show the source of .*Pass a function"):
        bertlab.show_source(len)


def test_quote_returns_the_value_outside_a_notebook():
    assert bertlab.quote("x", 3.5) == 3.5


def test_quote_turns_numpy_and_torch_scalars_into_python_numbers():
    import numpy as np
    import torch

    assert type(bertlab.quote("a", np.float64(0.25))) is float
    assert type(bertlab.quote("b", torch.tensor(3))) is int


def test_source_of_a_decorated_function_names_its_own_file():
    import torch

    @torch.no_grad()
    def scored(x):
        return x + 1

    src = get_source(scored)
    assert src.file.endswith("test_show.py"), src.file
    assert "return x + 1" in src.code and "_contextlib" not in src.file
