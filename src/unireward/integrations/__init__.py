"""Entry points other trainers load: reward functions in the shapes they call."""
