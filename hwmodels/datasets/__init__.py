"""Datasets: IDX readers for MNIST, EMNIST (every split) and Fashion-MNIST.

``catalog`` (no torch) says what exists; ``loader`` reads a whole split into tensors.
"""
