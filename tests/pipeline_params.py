"""The tests' worlds and models, in one place. The tiny pipelines the e2e tests run in temporary DVC repositories
(`past.pipeline_repo.make_pipeline_repo` merges them over params.yaml), one per purpose: the machinery, or
machinery that compares trained weights; the headline's (a pipeline that shows PaST's gain, measured over five
seeds) is tests/params_small.yaml; the flows' project is tests/flows_fixtures.py's. Below them, the worlds the
step-level tests build in their own folders (`steps.prepare` and `steps.base`).
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


# ------------------------------------------------------------------------------------------ step-level worlds

# The cheapest Llama that still trains: 2 layers of width 32
MICRO_LLAMA = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "max_positions": 64}

# 8 source people in two rounds on a 12-name world, base pre-trained 60 steps: tests of training steps that need
# a few steps to land in (resume after a kill, LoRA refinement rounds)
SMALL_WORLD = {
    "prepare": {"world": {"first_names": 12, "last_names": 12, "cities": 6, "employers": 6, "birth_years": 6,
                          "universities": 6, "hobbies": 6, "p0_people": 30, "source_people": 8,
                          "target_oracle_people": 2, "target_eval_people": 2, "renders_per_person": 6}},
    "base": {"tiny": MICRO_LLAMA, "steps": 60, "lr": 3e-3, "batch_size": 16},
}

# The least that runs every training step: ~4 source people, 4 base steps (tests of where and how steps run)
CHEAPEST = {
    "threads": 1,
    "prepare": {"world": {"first_names": 8, "last_names": 8, "cities": 4, "employers": 4, "birth_years": 4,
                          "universities": 4, "hobbies": 4, "p0_people": 12, "source_people": 4,
                          "target_oracle_people": 2, "target_eval_people": 2, "renders_per_person": 2}},
    "base": {"tiny": MICRO_LLAMA, "steps": 4, "batch_size": 8},
    "source_sft": {"steps": 2, "batch_size": 4},
    "skill_rl": {"rounds": 1, "grpo": {"steps": 2, "prompts_per_step": 4, "num_generations": 2}},
    "evaluate": {"batch_size": 64},
}
