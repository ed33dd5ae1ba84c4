"""Diagnostics of skill vectors: norms, sparsity, and cosines between deltas (the orthogonality check).

The paper's premise is that the RL skill vector is near-orthogonal to the knowledge deltas of SFT, which
is what lets them add without interference; `cosines` measures that, overall and per tensor, streaming.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .dtypes import FLOAT32
from .provenance import decode_metadata
from .reductions import dot
from .sources import TensorSource, row_blocks


@dataclass
class TensorStats:
    numel: int = 0
    sq: float = 0.0  # sum of squares
    zeros: int = 0
    max_abs: float = 0.0
    non_finite: int = 0  # NaN and +-Inf values


def tensor_stats(source: TensorSource, progress: bool = False) -> dict[str, TensorStats]:
    """Per-tensor sum of squares, exact-zero count, max |x| (RL deltas are often sparse in bf16) and NaN/Inf count."""
    stats = {}
    for name in tqdm(source.names(), desc="norms", unit="tensor", disable=not progress):
        spec, s = source.spec(name), TensorStats()
        for start, stop in row_blocks(spec):
            x = source.read(name, start, stop).astype(FLOAT32)
            s.numel += x.size
            sq = dot(x, x)
            if not math.isfinite(sq):  # NaN or Inf in the block
                s.non_finite += int(x.size - np.count_nonzero(np.isfinite(x)))
            s.sq += sq
            s.zeros += int(np.count_nonzero(x == 0))
            s.max_abs = max(s.max_abs, float(np.abs(x).max())) if x.size else s.max_abs
        stats[name] = s
    return stats


def dot_products(a: TensorSource, b: TensorSource, progress: bool = False) -> dict[str, tuple[float, float, float]]:
    """(a.b, |a|^2, |b|^2) per tensor present in both sources with the same shape."""
    b_names = set(b.names())
    out = {}
    for name in tqdm(a.names(), desc="cosines", unit="tensor", disable=not progress):
        if name not in b_names or a.spec(name).shape != b.spec(name).shape:
            continue
        ab = aa = bb = 0.0
        for start, stop in row_blocks(a.spec(name)):
            x, y = a.read(name, start, stop).astype(FLOAT32), b.read(name, start, stop).astype(FLOAT32)
            ab += dot(x, y)
            aa += dot(x, x)
            bb += dot(y, y)
        out[name] = (ab, aa, bb)
    return out


def _cos(ab: float, aa: float, bb: float) -> float:
    return ab / math.sqrt(aa * bb) if aa > 0 and bb > 0 else 0.0


def cosines(a: TensorSource, b: TensorSource, progress: bool = False) -> dict:
    """Cosine overall (all shared tensors flattened into one vector), per layer group and per tensor."""
    dots = dot_products(a, b, progress)
    groups: dict[str, list[float]] = {}
    for name, (ab, aa, bb) in dots.items():
        g = groups.setdefault(layer_group(name), [0.0, 0.0, 0.0])
        g[0] += ab
        g[1] += aa
        g[2] += bb
    total = [sum(v[i] for v in dots.values()) for i in range(3)]
    return {
        "overall": _cos(*total),
        "per_layer": {g: _cos(*v) for g, v in groups.items()},
        "per_tensor": {n: _cos(*v) for n, v in dots.items()},
    }


_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")


def layer_group(name: str) -> str:
    """'layer 3' for tensors of block 3; 'embed', 'head' or 'final norm' / other for the rest."""
    m = _LAYER.search(name)
    if m:
        return f"layer {int(m.group(1))}"
    if "embed" in name or "wte" in name or "wpe" in name:
        return "embed"
    if "lm_head" in name:
        return "head"
    return "other"


def delta_cosines(a, b) -> dict:
    """Cosine between two deltas (SkillVector or TensorSource): {"overall", "per_layer", "per_tensor"}."""
    return cosines(_as_source(a), _as_source(b))


def _as_source(x) -> TensorSource:
    return x.as_source() if hasattr(x, "as_source") else x


def report(skill: TensorSource, against: TensorSource | None = None, progress: bool = False) -> dict:
    """Everything `past skill inspect` shows: norms, sparsity, per-layer groups, optional cosines."""
    stats = tensor_stats(skill, progress)
    cos = cosines(skill, against, progress) if against is not None else None
    groups: dict[str, TensorStats] = {}
    for name, st in stats.items():
        g = groups.setdefault(layer_group(name), TensorStats())
        g.numel += st.numel
        g.sq += st.sq
        g.zeros += st.zeros
        g.max_abs = max(g.max_abs, st.max_abs)
        g.non_finite += st.non_finite

    def row(st: TensorStats, cosine: float | None) -> dict:
        out = {"norm": math.sqrt(st.sq), "num_parameters": st.numel, "zero_fraction": st.zeros / max(1, st.numel), "max_abs": st.max_abs,
               "non_finite": st.non_finite}
        if cosine is not None:
            out["cosine"] = cosine
        return out

    total = TensorStats(
        sum(s.numel for s in stats.values()), sum(s.sq for s in stats.values()),
        sum(s.zeros for s in stats.values()), max((s.max_abs for s in stats.values()), default=0.0),
        sum(s.non_finite for s in stats.values()),
    )
    result = {
        "skill": skill.label,
        "metadata": {k: v for k, v in decode_metadata(skill.metadata).items() if k not in ("tensor_norms", "base_architecture", "base_config")},
        "num_tensors": len(stats),
        **row(total, cos["overall"] if cos else None),
        "per_layer": {g: row(st, cos["per_layer"].get(g) if cos else None) for g, st in groups.items()},
        "per_tensor": {n: row(st, cos["per_tensor"].get(n) if cos else None) for n, st in stats.items()},
        "non_finite_tensors": {n: st.non_finite for n, st in stats.items() if st.non_finite},
    }
    if against is not None:
        result["against"] = against.label
    return result


def format_report(rep: dict, top: int = 10) -> str:
    """A terminal table: summary, one row per layer group, the `top` largest tensors."""
    has_cos = "cosine" in rep
    lines = [f"skill: {rep['skill']}"]
    for key, value in rep["metadata"].items():
        lines.append(f"  {key}: {value}")
    lines.append(
        f"{rep['num_tensors']} tensors, {rep['num_parameters']:,} parameters, norm {rep['norm']:.4g}, "
        f"exact zeros {100 * rep['zero_fraction']:.1f}%, max |x| {rep['max_abs']:.3g}"
    )
    if rep.get("non_finite_tensors"):
        lines.append(f"NaN or Inf in {len(rep['non_finite_tensors'])} tensors: {describe_non_finite(rep)}")
    if has_cos:
        lines.append(f"cosine with {rep['against']}: {rep['cosine']:+.4f} overall")

    def table(title: str, rows: dict) -> None:
        width = max([len(title)] + [len(k) for k in rows])
        header = f"{title:<{width}}  {'params':>12}  {'norm':>10}  {'share':>6}  {'zeros':>6}" + ("  cosine" if has_cos else "")
        lines.extend(["", header, "-" * len(header)])
        for key, r in rows.items():
            share = (r["norm"] / rep["norm"]) ** 2 if rep["norm"] else 0.0
            line = f"{key:<{width}}  {r['num_parameters']:>12,}  {r['norm']:>10.4g}  {100 * share:>5.1f}%  {100 * r['zero_fraction']:>5.1f}%"
            lines.append(line + (f"  {r['cosine']:+.4f}" if has_cos else ""))

    table("layer", dict(sorted(rep["per_layer"].items(), key=lambda kv: _group_order(kv[0]))))
    biggest = sorted(rep["per_tensor"].items(), key=lambda kv: -kv[1]["norm"])[:top]
    table(f"top {len(biggest)} tensors by norm", dict(biggest))
    return "\n".join(lines)


def describe_non_finite(rep: dict) -> str:
    """'name (k values), ...' for the tensors of a report holding NaN or Inf."""
    return ", ".join(f"{n} ({k} non-finite)" for n, k in rep["non_finite_tensors"].items())


def _group_order(group: str) -> tuple:
    if group == "embed":
        return (0, 0)
    if group.startswith("layer "):
        return (1, int(group.split()[1]))
    return (2, 0) if group == "head" else (3, 0)
