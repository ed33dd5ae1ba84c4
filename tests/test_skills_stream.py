"""The streaming engine's contract: blocks reach the sink in order, on the calling thread, in fresh buffers;
the writer puts each block at its place whatever its size."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from safetensors.numpy import load_file

from past.skills import safetensors_io, sources
from past.skills.engine import stream_combination
from past.skills.errors import NonFiniteError
from past.skills.safetensors_io import SafetensorsFileWriter
from past.skills.sources import DictSource, TensorSpec


def test_blocks_reach_the_sink_in_order_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_ELEMENTS", 64)  # many blocks, so both workers and the pool cycle
    rng = np.random.default_rng(0)
    a = {f"t{i}": rng.standard_normal((40, 16)).astype(np.float32) for i in range(5)}
    b = {n: rng.standard_normal(x.shape).astype(np.float32) for n, x in a.items()}
    specs = [(n, TensorSpec(np.dtype(np.float32), x.shape)) for n, x in a.items()]
    seen, threads, got = [], set(), {n: np.full(x.size, np.nan, np.float32) for n, x in a.items()}

    def sink(name, start, block):
        seen.append((name, start))
        threads.add(threading.get_ident())
        got[name][start * 16:start * 16 + block.size] = block

    sums = stream_combination([(1.0, DictSource(a)), (-0.5, DictSource(b))], specs, sink, squares=True)
    assert threads == {threading.get_ident()}  # one writer: the caller
    assert seen == [(n, start) for n, _ in specs for start in range(0, 40, 4)]  # 4 rows of 16 per block, in order
    for n in a:
        want = (a[n] - 0.5 * b[n]).reshape(-1)
        np.testing.assert_allclose(got[n], want, rtol=1e-6)
        assert sums[n] == pytest.approx(float(np.dot(want, want)), rel=1e-5)


def test_a_row_longer_than_a_block_in_a_wider_dtype():
    # One row of 1.5 blocks of float64: the block's buffer must grow past the pool's default size.
    row = sources.BLOCK_ELEMENTS * 3 // 2
    x = np.arange(2 * row, dtype=np.float64).reshape(2, row) / row
    out = {}
    stream_combination([(2.0, DictSource({"w": x}))], [("w", TensorSpec(np.dtype(np.float64), x.shape))],
                       lambda n, s, block: out.setdefault(s, block.copy()))
    assert sorted(out) == [0, 1]
    np.testing.assert_allclose(np.concatenate([out[0], out[1]]), 2 * x.reshape(-1).astype(np.float32), rtol=1e-6)


def test_a_bad_block_mid_stream_stops_the_stream_with_its_tensor_named(monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_ELEMENTS", 64)
    tensors = {f"t{i}": np.ones((40, 16), np.float32) for i in range(4)}
    tensors["t2"][30, 3] = np.inf
    specs = [(n, TensorSpec(np.dtype(np.float32), x.shape)) for n, x in tensors.items()]
    written = []
    with pytest.raises(NonFiniteError, match="tensor t2 in <in-memory> holds NaN or Inf"):
        stream_combination([(1.0, DictSource(tensors))], specs, lambda n, s, b: written.append((n, s)))
    assert ("t2", 28) not in written and ("t3", 0) not in written


def test_blocks_larger_than_a_write_piece_land_whole_in_any_order(tmp_path, monkeypatch):
    # A piece that divides neither a row nor the header: every pwrite boundary falls mid-element.
    monkeypatch.setattr(safetensors_io, "WRITE_PIECE", 37)
    rng = np.random.default_rng(1)
    tensors = {"a": rng.standard_normal((6, 10)).astype(np.float32), "b": rng.standard_normal((3, 7)).astype(np.float64)}
    specs = [(n, TensorSpec(x.dtype, x.shape)) for n, x in tensors.items()]
    writer = SafetensorsFileWriter(tmp_path / "w.safetensors", specs, {"format": "pt"})
    for name, start, stop in [("b", 1, 3), ("a", 2, 6), ("b", 0, 1), ("a", 0, 2)]:
        writer.write_at(name, start, tensors[name][start:stop].reshape(-1))
    writer.finish()
    back = load_file(tmp_path / "w.safetensors")
    for name, x in tensors.items():
        np.testing.assert_array_equal(back[name], x)
