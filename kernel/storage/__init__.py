"""Storage: data sets as Parquet under a storage root, with their metadata."""

from __future__ import annotations

from kernel.storage.datastore import DataSetMeta, DataStore, check_name, schema_to_json

__all__ = ["DataSetMeta", "DataStore", "check_name", "schema_to_json"]
