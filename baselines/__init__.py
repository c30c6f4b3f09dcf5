"""Classical and kernel-estimation baselines, scored by evaluate.py on the same benchmark as the learned models."""
