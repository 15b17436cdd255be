"""The ``tocsin`` command and what it runs: broker, replay, simulate, demo, explain and
the generated references."""
