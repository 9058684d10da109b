"""Old home of the trainer entry points; they live in :mod:`unireward.rewards.adapters` now."""
