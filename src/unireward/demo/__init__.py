"""The CPU demo and what only it needs: the synthetic colour/shape task (``synthetic``), the scripted
teacher that judges it from the pixels (``teacher``), and the ``demo``/``teacher`` commands. The
method itself lives in :mod:`unireward.train`; nothing there depends on this package except the
pipeline's synthetic-data and scripted-teacher branches."""
