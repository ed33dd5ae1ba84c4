"""What every test process shares: the suite runs two workers on two cores, so the pipelines and training
processes it starts let their idle OpenMP threads sleep (past.kernels.SIDE_BY_SIDE: the same bits, no spinning
against the other worker); and the fixtures several test files use."""

import os

import pytest

from past.kernels import SIDE_BY_SIDE

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


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reversed"):
        items.reverse()
