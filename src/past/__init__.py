"""past: Parametric Skill Transfer for continual adaptation of language models."""
