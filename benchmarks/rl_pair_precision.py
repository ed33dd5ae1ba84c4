"""What storing the RL pair in bf16 does to the skill vector (why the pair and v are kept in fp32).

On the outputs of a `dvc repro` (run from that repository): v = theta_rl - theta_sft of the last round as
stored (fp32), against v_bf16 = bf16(theta_rl) - bf16(theta_sft), the skill a run that saved both models in
bf16 would extract. Prints the share of v's non-zero entries that round away to exactly zero, the relative
error and cosine of v_bf16, and PaST's exact match with each (target SFT + lambda v).

    cd REPO && python benchmarks/rl_pair_precision.py [--lam 0.5]
"""

from __future__ import annotations

import argparse
import json

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--lam", type=float, help="lambda (default: inject.lam, else the skill's recommended_lam)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    from past import steps
    from past.config import load_params
    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set
    from past.layout import PIPELINE as layout
    from past.modeling import load_model, load_tokenizer, set_threads
    from past.skills import SkillVector
    from past.training.refinement import last_round

    params = load_params(args.params)
    set_threads(params.threads)
    lam = steps.resolved_lambda(layout.skill, args.lam if args.lam is not None else params.inject.lam)
    pair = last_round(layout.skill_rl)
    rl, sft = load_model(pair.rl).state_dict(), load_model(pair.sft).state_dict()
    exact = SkillVector({n: rl[n].float() - sft[n].float() for n in sft})
    rounded = SkillVector({n: rl[n].to(torch.bfloat16).float() - sft[n].to(torch.bfloat16).float() for n in sft})
    nonzero = sum(int((exact[n] != 0).sum()) for n in exact.names)
    lost = sum(int(((exact[n] != 0) & (rounded[n] == 0)).sum()) for n in exact.names)
    error = (sum(float((rounded[n] - exact[n]).pow(2).sum()) for n in exact.names) ** 0.5) / exact.norm()
    dot = sum(float((rounded[n] * exact[n]).sum()) for n in exact.names)

    questions = read_knowledge_set(layout.target).questions_in("eval")
    tokenizer, spec = load_tokenizer(layout.target_sft), EvalSpec.from_params(params)
    scores = {}
    for name, v in (("fp32 pair (as stored)", exact), ("bf16 pair", rounded)):
        model = v.apply_to(load_model(layout.target_sft), lam)
        scores[name] = steps.score(spec, model, questions, tokenizer, desc=name)["exact_match"]
    figures = {"lambda": lam, "nonzero_entries": nonzero, "share_rounded_to_zero": round(lost / nonzero, 4),
               "relative_error": round(error, 4), "cosine": round(dot / (exact.norm() * rounded.norm()), 4),
               "past_exact_match": scores}
    print(f"v: {nonzero:,} non-zero entries; stored in bf16, {100 * lost / nonzero:.1f}% of them round to exactly 0, "
          f"relative error {error:.3f}, cosine {figures['cosine']:.3f}")
    for name, value in scores.items():
        print(f"PaST (lambda {lam:g}) with v from the {name}: exact match {value:.3f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
