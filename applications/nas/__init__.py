"""NAS-Bench-201 architecture selection as ranking and selection.

- :mod:`.space`: the cell search space (15,625 architectures, benchmark strings), no torch.
- :mod:`.model`: the cell and a small network for 8x8 images (torch).
- :mod:`.live`: a problem whose sample is the validation accuracy of one seeded training run.
- :mod:`.tabular`: a problem over a benchmark in the official ``nas_201_api`` format, and the
  mini benchmark this project builds itself.
"""
from .space import (EDGES, N_ARCHS, OPS, arch_index, arch_string, enumerate_archs, parse_arch,
                    shared_ops)

__all__ = ["OPS", "EDGES", "N_ARCHS", "arch_index", "arch_string", "parse_arch", "enumerate_archs",
           "shared_ops"]
