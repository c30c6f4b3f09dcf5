"""The training engine: configs, experiment folders, the trainers of both phases, checkpointing, resume,
distributed runs, interrupts and random state, ablation grids. Inference is in restore/, scoring in evaluation/."""
