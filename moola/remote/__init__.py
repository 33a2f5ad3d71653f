"""Running gates elsewhere: a Runner interface (local subprocess, ssh) and the pieces it needs.

Only the orchestrating machine imports this package's ssh/settings modules (paramiko,
pydantic-settings); the pod itself only ever runs ``moola gate run``.
"""
