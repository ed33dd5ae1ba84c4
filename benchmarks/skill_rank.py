"""Accuracy of the injected model against the rank of the compressed skill vector.

For each rank, the skill (theta_rl_S - theta_sft_S from the pipeline's models) is compressed to a LoRA adapter
by per-matrix truncated SVD (`past skill compress`), injected into the target SFT model at the configured
lambda (`past skill inject`), and scored closed-book on the target's evaluation questions, next to the dense
skill and the target SFT alone. Run from the repository root after `dvc repro evaluate` (it needs
models/skill_rl, models/target_sft, data/world/target and params.yaml):

    python benchmarks/skill_rank.py --ranks 1,4,16,64,full --json benchmarks/skill_rank.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", default="1,4,16,64,full", help="comma-separated ranks; 'full' keeps every singular value")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--lam", type=float, help="lambda (default: inject.lam from params.yaml, else the skill's recommended_lam)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    from past import steps
    from past.config import load_params
    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set
    from past.layout import PIPELINE as layout
    from past.modeling import load_tokenizer, set_threads
    from past.skills import extract_skill, inject
    from past.skills.compress import compress_skill
    from past.training.refinement import last_round

    params = load_params(args.params)
    set_threads(params.threads)
    lam = steps.resolved_lambda(layout.skill, args.lam if args.lam is not None else params.inject.lam)
    questions = read_knowledge_set(layout.target).questions_in("eval")
    tokenizer, spec = load_tokenizer(layout.target_sft), EvalSpec.from_params(params)

    def score(folder: Path) -> dict:
        s = steps.score(spec, folder, questions, tokenizer, desc=folder.name)
        return {"exact_match": round(s["exact_match"], 4), "f1": round(s["f1"], 4)}

    last = last_round(layout.skill_rl)
    rows = []
    with tempfile.TemporaryDirectory(prefix="past-rank-") as tmp:
        tmp = Path(tmp)
        skill = extract_skill(last.rl, last.sft, tmp / "skill.safetensors")
        dense_bytes = skill.stat().st_size
        rows.append({"form": "target SFT only", "rank": None, "bytes": 0, "relative_error": 1.0, **score(layout.target_sft)})
        for rank in args.ranks.split(","):
            adapter = tmp / f"rank-{rank}"
            rep = compress_skill(skill, adapter, **({"energy": 1.0} if rank == "full" else {"rank": int(rank)}))
            out = inject(layout.target_sft, [adapter], [lam], tmp / f"model-{rank}")
            rows.append({"form": f"LoRA rank {rank}", "rank": rep["max_rank"], "bytes": rep["bytes"],
                         "relative_error": round(rep["relative_error"], 4), **score(out)})
        out = inject(layout.target_sft, [skill], [lam], tmp / "model-dense")
        rows.append({"form": "dense skill", "rank": None, "bytes": dense_bytes, "relative_error": 0.0, **score(out)})

    print(f"lambda = {lam}, {len(questions)} target evaluation questions\n")
    print("| skill form | max rank | size (KB) | relative error of v | exact match | F1 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['form']} | {r['rank'] or '-'} | {r['bytes'] / 1024:,.0f} | {r['relative_error']:.3f} | {r['exact_match']:.3f} | {r['f1']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"lambda": lam, "questions": len(questions), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
