"""Continual adaptation behind the Prefect flows: landing drops, the registry, adapting and refreshing."""
