"""Prefect events that the flows emit, and the resources they name.

    past.knowledge.landed     resource past.drop.<content hash>   a complete drop appeared (watch)
    past.model.promoted       resource past.model.<id>            a candidate became production (adapt, refresh_skill)
    past.model.rejected       resource past.model.<id> or past.drop.<hash> (nothing trained)
    past.skill.registered     resource past.skill.<id>            refresh_skill registered a better skill vector
    past.skill.rejected       resource past.skill.<id>

`adapt` deployments are triggered by `past.knowledge.landed` (see prefect.yaml); a person or another
automation can follow the decisions on the others. Prefect is imported only when an event is sent.
"""

from __future__ import annotations

LANDED = "past.knowledge.landed"
PROMOTED = "past.model.promoted"
REJECTED = "past.model.rejected"
SKILL_REGISTERED = "past.skill.registered"
SKILL_REJECTED = "past.skill.rejected"


def drop_resource(drop_hash: str, name: str | None = None) -> dict[str, str]:
    resource = {"prefect.resource.id": f"past.drop.{drop_hash}"}
    if name:
        resource["prefect.resource.name"] = name
    return resource


def model_resource(model_id: str, role: str | None = None) -> dict[str, str]:
    resource = {"prefect.resource.id": f"past.model.{model_id}", "prefect.resource.name": model_id}
    if role:
        resource["prefect.resource.role"] = role
    return resource


def skill_resource(skill_id: str, role: str | None = None) -> dict[str, str]:
    resource = {"prefect.resource.id": f"past.skill.{skill_id}", "prefect.resource.name": skill_id}
    if role:
        resource["prefect.resource.role"] = role
    return resource


def emit(event: str, resource: dict, payload: dict | None = None, related: list[dict] | None = None) -> str | None:
    """Send an event to the Prefect server in use; returns its id (None where events are off)."""
    from prefect.events import emit_event

    sent = emit_event(event=event, resource=resource, payload=payload or {}, related=related or [])
    return str(sent.id) if sent is not None else None
