"""Under the README's test command (pytest-xdist, `-n auto --dist loadgroup`) the tests that read one shared build
(conftest's SHARED_BUILDS) run on one worker, so that the build is made once."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def test_readers_of_a_shared_build_share_one_worker(pytester: pytest.Pytester):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install -e '.[test]')")
    pytester.makeconftest(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("negtrain_tests_conftest", {str(CONFTEST)!r})
        suite = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(suite)
        pytest_collection_modifyitems = suite.pytest_collection_modifyitems   # the suite's hook, its order kept
        """)
    pytester.makepyfile(test_readers="""
        import pytest

        @pytest.fixture
        def quick_run(tmp_path):          # stands in for the session's quick pipeline run
            return tmp_path

        def test_one(quick_run): pass
        def test_two(quick_run): pass
        def test_other(): pass
        """)
    run = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=3)
    workers = {}
    for line in run.outlines:
        if " PASSED " in line:
            worker, test = line.split()[0], line.split()[-1]
            workers[test] = worker
    assert workers.keys() == {"test_readers.py::test_one@quick_run", "test_readers.py::test_two@quick_run",
                              "test_readers.py::test_other"}, run.outlines
    assert workers["test_readers.py::test_one@quick_run"] == workers["test_readers.py::test_two@quick_run"]
