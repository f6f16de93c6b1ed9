"""Correlation estimation and few-shot correlation clustering (for P3C).

``spherical_kmeans(pilot, m, seed=...)`` clusters k systems by the correlation
of their CRN pilot outputs in O(k m n0) time and O(k n0) memory (no k x k
matrix); ``rands.parallel.clustering`` shards it over MPI ranks with
bit-identical labels. See :mod:`rands.clustering.kmeans` for the design.
"""
from .kmeans import (DEFAULT_CHUNK, ClusteringResult, SerialComm, shard_range, spherical_kmeans,
                     standardize)
from .quality import (adjusted_rand_index, balance_assignment, between_cluster_correlation, cluster_sums,
                      mate_correlation, mean_within_correlation)

__all__ = ["spherical_kmeans", "standardize", "ClusteringResult", "SerialComm", "shard_range",
           "DEFAULT_CHUNK", "adjusted_rand_index", "balance_assignment", "mean_within_correlation",
           "between_cluster_correlation", "cluster_sums", "mate_correlation"]
