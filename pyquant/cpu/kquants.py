"""The k-quants (super-blocks of 256): Q2_K, Q4_K, Q5_K in ``kquants_a``; Q3_K, Q6_K, Q8_K in ``kquants_b``."""

from . import kquants_a, kquants_b  # noqa: F401  (each registers its types on import)
