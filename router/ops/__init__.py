"""What operators see: queue depths and lag, Prometheus metrics, traces, logs without personal data."""
