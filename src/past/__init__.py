"""past: Parametric Skill Transfer for continual adaptation of language models."""

from past.kernels import pin_cpu_kernels

# Before torch computes anything: the same numbers on every x86 CPU (past.kernels).
pin_cpu_kernels()
