"""Generators that need no task data (out-of-domain sampling, adversarial pseudo-text)."""
