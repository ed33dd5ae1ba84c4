"""DVC stage `skill_rl`: GRPO on source questions (with iterative refinement), the reward curve plotted."""

from past import steps
from past.distributed import is_main
from past.files import write_csv_atomic, write_json_atomic
from past.knowledge.format import read_knowledge_set
from past.layout import PIPELINE
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    run = steps.skill_rl(params, PIPELINE.base, PIPELINE.source_sft, read_knowledge_set(PIPELINE.source),
                         PIPELINE.skill_rl, run=steps.training_run(params, work=PIPELINE.work("skill_rl"), live=PIPELINE.live("skill_rl")))
    if is_main():  # under a launcher the main process writes (past.distributed)
        write_json_atomic(PIPELINE.metrics / "skill_rl.json", {"rounds": run.rounds})
        write_csv_atomic(PIPELINE.plots / "reward_curve.csv", run.reward_curve, ["round", "step", "reward"])


if __name__ == "__main__":
    main()
