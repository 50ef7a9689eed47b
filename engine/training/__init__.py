"""Training learned simulators: configs, the DDP-ready loop, checkpoints and campaign jobs."""
