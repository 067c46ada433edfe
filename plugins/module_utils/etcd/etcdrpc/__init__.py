# GENERATED CODE - DO NOT EDIT. etcd's v3 API (kv.proto, auth.proto, rpc.proto as serialized in the
# installed etcd3 0.12.0 package) compiled by grpcio-tools 1.85.1. Regenerate with:
#     python3 scripts/gen_etcd_stubs.py
# pylint: skip-file
