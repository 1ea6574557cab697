"""Browsable API documentation rendered on the server from the generated OpenAPI document (no CDN, no JS)."""
from __future__ import annotations

from flask import current_app, render_template

from helpdesk.api import docs_bp

METHODS = ("get", "post", "put", "patch", "delete")


def _ref_name(schema: dict | None) -> str | None:
    """Return the component name of a $ref'd schema ("Ticket"), or a short description of an inline one."""
    if not schema:
        return None
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        inner = _ref_name(schema.get("items"))
        return f"[{inner}]" if inner else "array"
    return schema.get("format") or schema.get("type") or "object"


def _response(spec: dict, response: dict) -> dict:
    if "$ref" in response:
        response = spec["components"]["responses"].get(response["$ref"].rsplit("/", 1)[-1], {})
    content = response.get("content") or {}
    media = next(iter(content), None)
    return {"description": response.get("description", ""), "media": media,
            "schema": _ref_name(content[media].get("schema")) if media else None}


def _parameters(spec: dict, operation: dict) -> list[dict]:
    rows = []
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = spec["components"].get("parameters", {}).get(parameter["$ref"].rsplit("/", 1)[-1], {})
        schema = parameter.get("schema", {})
        rows.append({"name": parameter.get("name"), "in": parameter.get("in"), "required": parameter.get("required", False),
                     "type": _ref_name(schema), "enum": schema.get("enum"), "description": parameter.get("description", "")})
    return rows


def operations(spec: dict) -> list[dict]:
    """Return every path and method of the spec with summary, parameters, body and responses."""
    result = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody", {}).get("content", {})
            result.append({
                "path": path, "method": method.upper(), "summary": operation.get("summary", ""),
                "description": operation.get("description", ""),
                "parameters": _parameters(spec, {"parameters": item.get("parameters", []) + operation.get("parameters", [])}),
                "body": [{"media": media, "schema": _ref_name(value.get("schema"))} for media, value in body.items()],
                "responses": {code: _response(spec, response) for code, response in operation.get("responses", {}).items()},
                "anchor": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
            })
    return result


def schemas(spec: dict) -> list[dict]:
    """Return each component schema with its properties (name, type, required, description)."""
    result = []
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        properties = []
        for prop, definition in schema.get("properties", {}).items():
            if "allOf" in definition:
                definition = {**definition, **definition["allOf"][0]}
            properties.append({
                "name": prop, "type": _ref_name(definition), "required": prop in required,
                "nullable": definition.get("nullable", False), "enum": definition.get("enum"),
                "description": definition.get("description", ""),
            })
        result.append({"name": name, "description": schema.get("description", ""), "properties": properties})
    return result


@docs_bp.route("/docs")
def docs():
    """Show the API reference generated from the OpenAPI document."""
    spec = current_app.extensions["helpdesk_api"].spec.to_dict()
    return render_template("api/docs.html", spec=spec, operations=operations(spec), schemas=schemas(spec))
