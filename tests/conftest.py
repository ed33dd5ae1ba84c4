"""What every test process shares: the suite runs two workers on two cores, so the pipelines and training
processes it starts let their idle OpenMP threads sleep (past.kernels.SIDE_BY_SIDE: the same bits, no spinning
against the other worker)."""

import os

from past.kernels import SIDE_BY_SIDE

for _key, _value in SIDE_BY_SIDE.items():
    os.environ.setdefault(_key, _value)
