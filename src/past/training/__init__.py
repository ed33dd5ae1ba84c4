"""Training on top of TRL: SFT (documents), GRPO (questions with a verifiable reward)."""
