"""Strawberry types and inputs, one module per domain; ``api.schema`` assembles the schema."""
