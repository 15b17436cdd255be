"""A "world zoo" for judging detection: randomised worlds (``draw.py``: structure from a
seed; ``generate.py``: their department streams and ground truth) and ``zoo.py``, which
scores Tocsin and the baselines on many of them. See docs/detectors.md, "World zoo"."""
