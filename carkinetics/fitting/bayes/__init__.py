"""Hierarchical Bayesian population fits (PyMC/ArviZ) of the shared population specification."""
