"""Noise floors: how far a metric moves between seeds alone, so that a report can tell a change from noise.

benchmarks/seeds.py measures them (`--noise benchmarks/results/noise.json`): for every numeric metric the seeds
produce, named `file:key` as `dvc metrics diff` names it (past.evaluation.metrics_diff), its mean and standard
deviation over the seeds; for every numeric column of the plot tables (plots/*.csv), the spread of one point.
`past report` reads them: a change is within noise when |change| <= 2 std, beyond noise otherwise.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from past.evaluation.metrics_diff import metric_key

DEFAULT_PATH = Path("benchmarks/results/noise.json")
WIDTH = 2  # standard deviations: about 95% of what seeds alone do to a normally distributed metric
_ROUNDING = 1e-12  # DVC's new - old in floats: 0.82 - 0.70 is 0.12000000000000001, not 2 x 0.06

UNCHANGED = "unchanged"
WITHIN = "within noise"
BEYOND = "beyond noise"
UNKNOWN = "noise floor unknown"
CHANGED = "changed"  # a value appeared, went, or is not a number: no floor applies


def verdict(old, new, std: float | None) -> str:
    """What a change from `old` to `new` is, against a metric's standard deviation over seeds (None: unknown)."""
    if old == new:
        return UNCHANGED
    if not (is_number(old) and is_number(new)):
        return CHANGED
    if std is None:
        return UNKNOWN
    return WITHIN if abs(new - old) <= WIDTH * std + _ROUNDING else BEYOND


class NoiseFileError(RuntimeError):
    pass


@dataclass(frozen=True)
class NoiseFloors:
    """A noise.json as read; without the file every floor is unknown."""
    path: Path
    metrics: dict = field(default_factory=dict)  # "file:key" -> {"mean", "std", "n"}
    plots: dict = field(default_factory=dict)  # "plot file:column" -> {"std", "n", "rows"}
    seeds: list = field(default_factory=list)
    source: str = ""

    @classmethod
    def load(cls, path: Path) -> NoiseFloors:
        if not path.is_file():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise NoiseFileError(f"{path}: not JSON ({err}); rewrite it with benchmarks/seeds.py --noise") from None
        return cls(path, data.get("metrics", {}), data.get("plots", {}), data.get("seeds", []), data.get("source", ""))

    @property
    def measured(self) -> bool:
        return self.path.is_file()

    def metric(self, key: str) -> float | None:
        return self.metrics.get(key, {}).get("std")

    def plot(self, key: str) -> float | None:
        return self.plots.get(key, {}).get("std")


def measure(metrics: dict[int, dict], plots: dict[int, dict], source: str) -> dict:
    """noise.json's content from each seed's metric files ({seed: {file: data}}) and plot tables ({seed: {file:
    rows}}), `source` being the command that ran the seeds."""
    seeds = sorted(metrics)
    values = [metric_values(metrics[seed]) for seed in seeds]
    tables = [plots.get(seed, {}) for seed in seeds]
    return {"seeds": seeds, "source": source,
            "metrics": {key: spread(v) for key, v in _by_key(values).items() if len(v) > 1},
            "plots": {metric_key(file, column): floor for file in sorted(set().union(*tables))
                      for column, floor in table_spread([t[file] for t in tables if file in t]).items()}}


def metric_values(files: dict[str, dict]) -> dict[str, float]:
    """{"file:key": number} of metric files' data, flattened and named exactly as `dvc metrics diff` does."""
    from dvc.utils.diff import format_dict  # DVC's own: lists become strings, nested keys join with dots
    from dvc.utils.flatten import flatten

    return {metric_key(file, name): value for file, data in files.items() if isinstance(data, dict)
            for name, value in flatten(format_dict(data)).items() if _finite(value)}


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values), "n": len(values)}


def table_spread(tables: list[list[dict]]) -> dict[str, dict]:
    """{column: {"std", "n", "rows"}} for one plot file over seeds: the spread of one point, the root mean square
    over rows of each row's standard deviation across seeds. Rows pair up by position (this pipeline's x values
    do not depend on the seed), so tables whose lengths differ between seeds give no floor."""
    if len(tables) < 2 or len({len(table) for table in tables}) != 1 or not tables[0]:
        return {}
    columns = [column for column in tables[0][0]
               if all(_finite(as_number(row.get(column))) for table in tables for row in table)]
    rows = len(tables[0])
    return {column: {"std": math.sqrt(statistics.fmean(
                        statistics.variance([as_number(table[i][column]) for table in tables]) for i in range(rows))),
                     "n": len(tables), "rows": rows}
            for column in columns}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_number(value):
    """A plot cell (DVC and csv give text) as a float where it is one, else as it is."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _finite(value) -> bool:
    return is_number(value) and math.isfinite(value)


def _by_key(per_seed: list[dict[str, float]]) -> dict[str, list[float]]:
    keys = sorted(set().union(*per_seed))
    return {key: [seed[key] for seed in per_seed if key in seed] for key in keys}
