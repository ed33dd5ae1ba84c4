"""DVC stage `extract_skill`: v = theta_rl_S - theta_sft_S, and the orthogonality diagnostic.

The paper rests on SFT and RL moving the weights in nearly orthogonal directions: cos(Delta_SFT_S, v)
is reported overall and per weight matrix, next to cos(Delta_SFT_S, Delta_SFT_T) for scale.
"""

import hashlib

from past import layout
from past.files import write_json_atomic, write_text_atomic
from past.knowledge.format import content_hash
from past.skills import SkillVector, delta_cosines, extract_skill
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    last = (layout.SKILL_RL / "LAST_ROUND").read_text().strip()
    rl, sft = layout.SKILL_RL / last / "rl", layout.SKILL_RL / last / "sft"
    metadata = {
        "base_model": params.base.model,
        "base_config_sha256": hashlib.sha256((layout.BASE / "config.json").read_bytes()).hexdigest(),
        "source_data_sha256": content_hash(layout.SOURCE),
        "rounds": params.skill_rl.rounds,
        "recommended_lambda": params.inject.lam,
    }
    extract_skill(rl, sft, layout.SKILL, metadata=metadata, overwrite=True)

    skill = SkillVector.load(layout.SKILL)
    sft_source = SkillVector.from_models(sft, layout.BASE)
    sft_target = SkillVector.from_models(layout.TARGET_SFT, layout.BASE)
    vs_skill, vs_target = delta_cosines(sft_source, skill), delta_cosines(sft_source, sft_target)
    write_json_atomic(layout.METRICS / "orthogonality.json", {
        "cos_sft_source_vs_skill": round(vs_skill["overall"], 4),
        "cos_sft_source_vs_sft_target": round(vs_target["overall"], 4),
        "norm_skill": round(skill.norm(), 4),
        "norm_sft_source": round(sft_source.norm(), 4),
    })
    rows = ["tensor,cos_sft_source_vs_skill,cos_sft_source_vs_sft_target"]
    rows += [f"{name},{vs_skill['per_tensor'][name]:.4f},{vs_target['per_tensor'][name]:.4f}"
             for name in sorted(vs_skill["per_tensor"])]
    write_text_atomic(layout.PLOTS / "cosine_per_matrix.csv", "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
