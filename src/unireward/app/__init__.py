"""A web page for the judge (``unireward app``): upload a pair, see what the model sees, read its
verdict, scores and reasoning. Needs the ``app`` extra (Gradio)."""
