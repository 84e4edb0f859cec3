"""Training: the task model (a recurrent backbone + read-out), the Lightning trainer, and the
side-by-side comparison of models on one task."""
