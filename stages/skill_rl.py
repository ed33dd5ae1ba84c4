"""DVC stage `skill_rl`: GRPO on source questions (with iterative refinement), the reward curve plotted."""

import csv
import io

from past import layout
from past.files import atomic_dir, write_json_atomic, write_text_atomic
from past.knowledge.format import read_knowledge_set
from past.stage import Params, stage
from past.training.refinement import acquire_skill


@stage
def main(params: Params) -> None:
    with atomic_dir(layout.SKILL_RL) as out:
        report = acquire_skill(params, layout.BASE, layout.SOURCE_SFT, read_knowledge_set(layout.SOURCE), out)
        (out / "LAST_ROUND").write_text(f"round_{params.skill_rl.rounds}\n")
    write_json_atomic(layout.METRICS / "skill_rl.json", {"rounds": report["rounds"]})
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["round", "step", "reward"])
    writer.writeheader()
    writer.writerows(report["reward_curve"])
    write_text_atomic(layout.PLOTS / "reward_curve.csv", table.getvalue())


if __name__ == "__main__":
    main()
