"""The OpenAPI document, from declared pydantic models (ADR 0012)."""
