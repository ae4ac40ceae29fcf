"""Metrics, traces and logs: what SHMS tells its operators (README, Observability)."""
