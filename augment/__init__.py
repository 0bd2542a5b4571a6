"""Data-augmentation generators (TinyBERT word replacement, Tang et al.'s rules)."""
