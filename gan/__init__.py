"""The engine: config, trainers, checkpoints, metrics and logging. Scripts call in here."""
