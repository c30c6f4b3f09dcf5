"""Shipping a model: exporting a checkpoint to weights/ with its SHA256SUMS line, model cards and README crops."""
