"""GLUE tasks and metrics, evaluation of checkpoints, and ``compare``."""
