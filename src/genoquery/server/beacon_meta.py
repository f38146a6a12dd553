"""The parts of every GA4GH Beacon v2 response: its ``meta`` section and the error response
(:mod:`genoquery.server.problems` answers errors under ``/beacon/`` with it)."""

from __future__ import annotations

from typing import Any

API_VERSION = "v2.0.0"
BEACON_ID = "org.genoquery.local"
ENTRY = "genomicVariant"
SCHEMA = {"entityType": ENTRY, "schema": "beacon-g_variant-v2.0.0"}


def meta(**extra: Any) -> dict:
    """The ``meta`` section of every Beacon response, with ``extra`` entries."""
    return {"beaconId": BEACON_ID, "apiVersion": API_VERSION, "returnedSchemas": [SCHEMA], **extra}


def error_response(status: int, message: str) -> dict:
    """A beaconErrorResponse."""
    return {
        "meta": meta(
            returnedGranularity="boolean",
            receivedRequestSummary={
                "apiVersion": API_VERSION,
                "requestedSchemas": [],
                "pagination": {},
                "requestedGranularity": "boolean",
            },
        ),
        "error": {"errorCode": status, "errorMessage": message},
    }
