"""The NASRec search space: choices, supernet, standalone subnets."""
