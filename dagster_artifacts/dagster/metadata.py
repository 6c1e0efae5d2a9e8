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
#: The versions the step used (``["bike-features:v0", ...]``), on the step's own materialization.
INPUTS = "artifact/inputs"
USED_VERSION = "artifact/used_version"
#: ``MetadataValue.url`` of the version's page in the artifact browser (when its URL is set).
LINK = "artifact/link"
URI = "dagster/uri"
COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"
ARRAY_SHAPE = "artifact/shape"
ARRAY_DTYPE = "artifact/dtype"

# -- on observations and checks ----------------------------------------------------------------
CHECKED_ENTRIES = "artifact/checked_entries"
PROBLEMS = "artifact/problems"

# -- in artifact version metadata --------------------------------------------------------------
HANDLER = "dagster/handler"
SERIALIZER = "dagster/serializer"
PATH_KIND = "dagster/path_kind"
#: The Dagster asset key that produced the version (so lineage maps back to asset keys).
ASSET_KEY = "dagster/asset_key"
#: ``op.output`` of the op output that produced the version (ops have no asset key).
OP_OUTPUT = "dagster/op_output"
#: The asset's (or op's) ``code_version`` when the version was logged.
CODE_VERSION = "dagster/code_version"

# -- run tags set by the artifact sensor -------------------------------------------------------
TAG_NAME = "artifact/name"
TAG_VERSION = "artifact/version"
TAG_DIGEST = "artifact/digest"
TAG_ALIAS = "artifact/alias"
