"""The HTTP service: health, readiness, metrics, the operations and compliance pages, with roles."""
