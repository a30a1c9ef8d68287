"""tiergate's PyTorch tier: a gRPC server (proto/tiergate/v1/tier.proto) over the shared model
definition in models/lib/tiergate_model. Run it with `python3 -m tiergate_sidecar` from sidecar/."""
