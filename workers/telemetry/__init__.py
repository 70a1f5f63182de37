"""Telemetry: the metrics job (daily rollups). Ingestion, consent and retention are SQL."""
