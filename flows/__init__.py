"""Prefect flows: watch (landing folder -> events), adapt (drop -> maybe a new production model), refresh_skill."""
