"""Calico v1 (etcd v2) → v3 (etcd v3): the v1 data model and names, the per-kind converters
(calico-upgrade's rules), and the resumable phases (validate, start, complete, abort) with their
lock and marker. Reads through the etcd layer, writes through the Calico store."""
