"""The tiny pipelines the e2e tests run in temporary DVC repositories (`past.pipeline_repo.make_pipeline_repo`
merges them over params.yaml), one per purpose: the machinery, or machinery that compares trained weights.
The headline's (a pipeline that shows PaST's gain, measured over five seeds) is tests/params_small.yaml.
"""

# Every stage (two refinement rounds), the smallest world and steps that still train past a checkpoint: for
# tests of the machinery (kill and resume, restore from a DVC remote), where no model needs to answer anything.
# Its training SFTs run 30 steps; GRPO 2 (mid-epoch, so a resumed trainer's end is exercised too).
MINIMAL = {
    "seed": 0, "threads": 1,
    "prepare": {"world": {"p0_people": 30, "source_people": 12, "target_oracle_people": 4, "target_eval_people": 4,
                          "renders_per_person": 8}},
    "base": {"steps": 30, "batch_size": 16},
    "source_sft": {"steps": 30, "batch_size": 16},
    "skill_rl": {"rounds": 2, "grpo": {"steps": 2, "prompts_per_step": 4, "num_generations": 4}},
    "target_sft": {"steps": 30, "batch_size": 16},
    "oracle": {"grpo": {"steps": 2, "prompts_per_step": 4, "num_generations": 4}},
    "evaluate": {"lambdas": [0.5]},
}

# Under torchrun (two processes per training stage), compared with one-process runs of the same steps: enough
# training that the SFT update (and a different seed's distance) is measurable against the reduction-order noise.
LAUNCHED = {
    "seed": 0, "threads": 1,
    "prepare": {"world": {"p0_people": 60, "source_people": 24, "target_oracle_people": 10, "target_eval_people": 10,
                          "renders_per_person": 16}},
    "base": {"steps": 200, "batch_size": 32},
    "source_sft": {"steps": 60, "batch_size": 32},
    "skill_rl": {"rounds": 2, "grpo": {"steps": 6, "prompts_per_step": 8, "num_generations": 4}},
    "target_sft": {"steps": 40, "batch_size": 32},
    "oracle": {"grpo": {"steps": 4, "prompts_per_step": 8, "num_generations": 4}},
    "evaluate": {"lambdas": [0.5]},
    "train": {"launcher": "torchrun --nproc_per_node 2"},
}
