"""Entry points other trainers load: the judge-training rewards in the shapes they call."""
