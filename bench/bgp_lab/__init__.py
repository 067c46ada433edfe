"""BGP scale lab: BIRD daemons in network namespaces, configured from kubescale.calico plans.

Run through `make bench-bgp` (or with PYTHONPATH as the Makefile sets it): the collection is imported
from the .lab/collections link that `make link` creates.
"""
