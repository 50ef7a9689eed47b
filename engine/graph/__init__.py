"""Mesh + flow state → torch-geometric graphs: adjacency, features, normalisers.

Everything here is feature engineering that the learned simulators share; the networks in
``engine.models`` only see tensors built by these transforms.
"""
