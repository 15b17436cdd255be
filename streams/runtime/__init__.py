"""The running worker: faust agents, checkpoints, faust tuning, watchdog, metrics."""
