"""The CPU kernels every `past` process computes with: the same bits on every x86-64 CPU with AVX2.

torch picks its CPU kernels by instruction set, and they round differently: ATen's vectorised loops are
AVX2 or AVX-512 wide, MKL's GEMMs take another path on AVX-512, and under bf16 autocast oneDNN uses AMX
where the CPU has it. Measured on the embedded `base` stage (100 steps, docs/reproducibility.md): bf16
autocast gave four different models under four `ONEDNN_MAX_CPU_ISA` limits; fp32 gave one model for any
oneDNN limit, another once ATen or MKL took their AVX2 path. Pinning ATen to AVX2 (an AVX2-only CPU's own
choice) makes an AVX-512 or AMX machine compute exactly what an AVX2 machine computes.

MKL is pinned to its COMPATIBLE branch (SSE2, no approximate reciprocals), not AVX2: MKL honours every
other branch on Intel CPUs only and silently takes its AUTO branch elsewhere. Measured: with `MKL_CBWR=AVX2`
an AMD EPYC computed another model than the Intel Xeon the lock was written on (150 base steps: 69804e71
against 5992a171); COMPATIBLE is the one branch MKL documents as the same on Intel and other x86 CPUs. It
costs the embedded model ~20% of a stage's time (small GEMMs: the per-step overhead dominates).

The result also depends on the number of threads (`threads` in params.yaml), so that number is fixed too: neither
MKL nor OpenMP may choose fewer threads on a machine with fewer cores.

The variables are read when torch first dispatches a kernel, so they are set when `past` is imported
(`past/__init__.py`), before any model is built. A variable the user set is left alone;
`PAST_CPU_KERNELS=native` keeps torch's own choice (faster GEMMs for large models on AVX-512, other bits).
"""

from __future__ import annotations

import os

PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised CPU loops
    "MKL_CBWR": "COMPATIBLE",       # MKL's conditional numerical reproducibility: one code path on every x86 vendor
    "ONEDNN_MAX_CPU_ISA": "AVX2",   # oneDNN (bf16 matmuls, convolutions): no AMX / AVX-512 kernels
    # the thread count `threads` asks for, on every machine: MKL and OpenMP may otherwise use fewer threads where
    # they see fewer physical cores (MKL's reproducibility conditions: "especially needed on different systems")
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
}


# For processes that share the cores with others (the suite's two workers, seeds run two at a time): OpenMP's
# threads sleep when idle instead of spinning. Measured on 2 cores, two 2-thread `base` runs side by side: 0.41-0.79
# s/step each with the default spinning, 0.15 passive (alone: 0.088 spinning, 0.11 passive). The bits are the same.
SIDE_BY_SIDE = {"OMP_WAIT_POLICY": "PASSIVE"}


def pin_cpu_kernels(environ=os.environ) -> dict[str, str]:
    """Set the pinned kernel variables the environment does not set yet; return what was set."""
    if environ.get("PAST_CPU_KERNELS", "pinned") == "native":
        return {}
    added = {key: value for key, value in PINNED.items() if key not in environ}
    environ.update(added)
    return added
