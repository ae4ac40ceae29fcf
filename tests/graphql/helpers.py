"""Assertions shared by the GraphQL tests."""

from __future__ import annotations

from typing import Any

from beanie import Document


async def snapshot(*models: type[Document]) -> dict[str, list[dict[str, Any]]]:
    """Every stored document of ``models``, raw, to prove a rejected write changed nothing."""
    result: dict[str, list[dict[str, Any]]] = {}
    for model in models:
        rows = await model.get_motor_collection().find({}).sort("_id", 1).to_list(None)
        result[model.get_collection_name()] = rows
    return result


def code(error: dict[str, Any]) -> str:
    return str(error["extensions"]["code"])
