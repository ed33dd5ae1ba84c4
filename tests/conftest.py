"""What every test process shares: the suite runs two workers on two cores, so the pipelines and training
processes it starts let their idle OpenMP threads sleep (past.kernels.SIDE_BY_SIDE: the same bits, no spinning
against the other worker); and the fixtures several test files use."""

import os
from pathlib import Path

import pytest

from past.kernels import SIDE_BY_SIDE
from reliability_report import case_property, table

for _key, _value in SIDE_BY_SIDE.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny fp32 model family on disk (tests/skills_fixtures.py: base, sft_s, rl_s, sft_t); a module that needs
    another dtype defines its own."""
    import torch
    from skills_fixtures import family

    return family(tmp_path_factory, torch.float32)


def pytest_addoption(parser):
    parser.addoption("--reversed", action="store_true",
                     help="run the collected tests in reverse order (each must pass alone and in any order)")
    parser.addoption("--reliability-table", type=Path, default=None,
                     help="write the reliability catalogue (the @pytest.mark.reliability tests' outcomes) as Markdown")
    parser.addoption("--drops", type=int, default=4,
                     help="drops landing at once in the load test (docs/reliability.md's case 17 runs 20)")


_RELIABILITY_REPORTS = []  # the marked tests' reports (on the xdist controller: every worker's)


@pytest.fixture(autouse=True)
def _reliability_case(request):
    """A marked test carries its case to the report, also from an xdist worker."""
    marker = request.node.get_closest_marker("reliability")
    if marker:
        request.node.user_properties.append(case_property(marker))


def pytest_runtest_logreport(report):
    if any(name == "reliability" for name, _ in report.user_properties):
        _RELIABILITY_REPORTS.append(report)


def pytest_sessionfinish(session):
    path = session.config.getoption("--reliability-table")
    if path and not hasattr(session.config, "workerinput"):  # the controller, which has every report
        path.write_text(table(_RELIABILITY_REPORTS))


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reversed"):
        items.reverse()
