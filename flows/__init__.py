"""Prefect flows: the only place moola imports Prefect."""
