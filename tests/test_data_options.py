"""One data-options object: the API, compare's config and the analyses read datasets through DataOptions."""

from __future__ import annotations

import pytest

from transferlab.analysis.target import TargetSpec
from transferlab.compare.config import CompareConfig
from transferlab.data import DataOptions, load_task
from transferlab.errors import DataError


def test_data_options_read_like_load_task():
    opts = DataOptions(classes="0-4", image_size=28, image_margin=4)
    a, b = opts.load("digits"), load_task("digits", classes="0-4", image_size=28, image_margin=4)
    assert a.class_names == b.class_names and (a.x_test == b.x_test).all()
    assert CompareConfig(pretrained="p", data="digits", classes="0-4", image_size=28, image_margin=4,
                         strategies=["full"]).data_options == opts
    assert TargetSpec("digits", classes="0-4", image_size=28, image_margin=4).options == opts
    with pytest.raises(DataError, match="digits"):
        DataOptions(classes="0-40").load("digits")


def test_recorded_options_are_overridden_only_by_given_ones():
    recorded = {"classes": "0-4", "image_size": 28, "image_margin": None, "label_column": "y", "text_column": None}
    opts = DataOptions.from_preprocessing(recorded, label_column=None, text_column="body")
    assert opts == DataOptions(classes="0-4", image_size=28, image_margin=0, label_column="y", text_column="body")
