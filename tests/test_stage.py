"""negtrain_core.stage: the one-line end of a workflow script on an expected error."""

import logging

import pytest

from negtrain_core.stage import one_line_errors


def test_a_listed_error_ends_in_one_logged_line(caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as ended:
        with one_line_errors(KeyError, ValueError, context="preprocess x: "):
            raise ValueError("raw/x.tsv:3: two fields, expected three")
    assert str(ended.value) == "negtrain: preprocess x: raw/x.tsv:3: two fields, expected three"
    assert ended.value.__cause__ is None and ended.value.__suppress_context__
    assert caplog.messages == ["raw/x.tsv:3: two fields, expected three"]


def test_other_errors_keep_their_traceback():
    with pytest.raises(TypeError, match="a bug"):
        with one_line_errors(ValueError):
            raise TypeError("a bug")
