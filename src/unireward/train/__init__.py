"""Training: teacher distillation, cold-start SFT, rejection sampling, GRPO, and the pipeline."""
