"""Learned simulators: pure networks (MeshGraphNet, GraphTransformer, PhysGTO), their model
cards and files, and the :class:`~engine.models.simulator.Simulator` that wraps them for
training, rollout and the app."""
