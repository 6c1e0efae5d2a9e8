"""Object stores (S3, GCS): which protocols they are, and their connection options.

Options come from two places, so that a reference to another bucket or endpoint than the store's
works without code: the settings' ``storage_options`` (when the reference has the store's scheme),
and each cloud's standard environment. s3fs/botocore already read ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``AWS_DEFAULT_REGION``; we
add ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` explicitly (older clients ignore them), and
``STORAGE_EMULATOR_HOST`` for GCS (endpoint plus anonymous token, as Google's clients do).
Otherwise gcsfs uses Google's usual credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud, the
metadata server).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

S3_PROTOCOLS = ("s3", "s3a")
GCS_PROTOCOLS = ("gs", "gcs")
GCS_WRITE_OPTIONS = ("kms_key_name", "fixed_key_metadata")


def cloud_options(protocol: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """fsspec options for ``protocol``: explicit ``options`` first, the cloud's environment next."""
    merged = dict(options or {})
    env = os.environ
    if protocol in S3_PROTOCOLS:
        client_kwargs = merged.get("client_kwargs") or {}
        if not merged.get("endpoint_url") and not client_kwargs.get("endpoint_url"):
            endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
            if endpoint:
                merged["endpoint_url"] = endpoint
    elif protocol in GCS_PROTOCOLS:
        emulator = env.get("STORAGE_EMULATOR_HOST", "")
        if emulator and emulator != "default":
            if not merged.get("endpoint_url"):
                merged["endpoint_url"] = emulator if "://" in emulator else f"http://{emulator}"
            merged.setdefault("token", "anon")
    return merged


def protocol_of(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else "file"
