"""Fixed-budget procedures: equal allocation, OCBA, EFG / EFG+, FBKT.

Classes are imported lazily through ``rands.procedures.make`` (registry names "equal",
"ocba", "efg", "efg+", "fbkt").
"""
