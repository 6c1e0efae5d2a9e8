"""Metadata keys: what every materialization carries (the contract), and the keys the type
handlers record in an artifact version's own metadata so that loading need not guess."""

# -- on materializations -----------------------------------------------------------------------

NAME = "artifact/name"
VERSION = "artifact/version"
VERSION_INDEX = "artifact/version_index"
DIGEST = "artifact/digest"
ALIASES = "artifact/aliases"
SIZE_BYTES = "artifact/size_bytes"
FILE_COUNT = "artifact/file_count"
DEDUPLICATED = "artifact/deduplicated"
USED_VERSION = "artifact/used_version"
URI = "dagster/uri"
COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"

# -- in artifact version metadata (written by the type handlers) -------------------------------
HANDLER = "dagster/handler"
SERIALIZER = "dagster/serializer"
PATH_KIND = "dagster/path_kind"
