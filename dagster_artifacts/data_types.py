"""W&B's ``wandb.data_types`` namespace: the rich values an artifact can hold."""

from dagster_artifacts.tables import PartitionedTable, Table

__all__ = ["PartitionedTable", "Table"]
