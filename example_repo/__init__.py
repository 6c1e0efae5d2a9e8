"""A bike-sharing pipeline whose assets are stored as artifact versions (dagster-artifacts)."""
