"""A flow's command line made from the flow itself: its parameters, defaults, choices and help are
the ones Prefect shows in the UI and a deployment run accepts (``parameter_schema`` of its
signature and docstring), so each parameter is declared once, on the flow.

    python -m flows.gates --data d.parquet --val-size 20 --policy '{"f1_margin": 0.02}'
"""

from __future__ import annotations

import argparse
import json

from prefect.utilities.callables import parameter_schema

TYPES = {"string": str, "number": float, "integer": int, "object": json.loads}


def _kind(prop: dict) -> str | None:
    """The JSON type of a parameter, its null alternative left out (``str | None`` -> string)."""
    if "type" in prop:
        return prop["type"]
    return next((p.get("type") for p in prop.get("anyOf", []) if p.get("type") != "null"), None)


def flow_parser(flow, prog: str, description: str) -> argparse.ArgumentParser:
    """``--name-with-dashes`` for each parameter of ``flow``: required when it has no default; a
    switch pair for a boolean (``--x`` / ``--no-x``); JSON for a mapping; the choices of a Literal."""
    schema = parameter_schema(flow.fn).model_dump()
    ap = argparse.ArgumentParser(prog=prog, description=description)
    for name, prop in sorted(schema["properties"].items(), key=lambda kv: kv[1].get("position", 0)):
        flag, kind = "--" + name.replace("_", "-"), _kind(prop)
        helptext = " ".join((prop.get("description") or "").split())
        if kind == "boolean":  # --name / --no-name
            ap.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=prop.get("default"),
                            help=helptext.replace("%", "%%"))
            continue
        default = prop.get("default")
        shown = f" (default: {json.dumps(default) if kind == 'object' else default})" if default is not None else ""
        ap.add_argument(flag, dest=name, type=TYPES.get(kind, str), choices=prop.get("enum"), default=default,
                        required=name in schema.get("required", []), help=(helptext + shown).replace("%", "%%"))
    return ap

