"""Every route the REST API declares is an operation of the OpenAPI document, and back.

The routes are read from the synthesized stack (methods, their resources' path parts up to
the API root, their integrations' functions), so a route added to the API construct without
its operation in ``lambda_src/openapi.py`` fails here.
"""

from __future__ import annotations

import re

from lambda_src import openapi

_REF = re.compile(r"^\$\{([a-z_]+)\.([A-Za-z0-9_]+)\.([a-z_]+)\}$")


def _resolve(reference: str) -> tuple[str, str, str]:
    match = _REF.match(reference)
    assert match, f"not a Terraform reference: {reference!r}"
    return match.group(1), match.group(2), match.group(3)


def declared_routes(synthesized) -> dict[tuple[str, str], str]:
    """(method, path) -> the handler of the function the integration invokes."""
    resources = synthesized.resources("aws_api_gateway_resource")
    functions = synthesized.resources("aws_lambda_function")

    def path_of(reference: str) -> str:
        kind, name, attribute = _resolve(reference)
        if kind == "aws_api_gateway_rest_api":
            assert attribute == "root_resource_id"
            return ""
        resource = resources[name]
        return f"{path_of(resource['parent_id'])}/{resource['path_part']}"

    integrations = synthesized.resources("aws_api_gateway_integration")
    routes = {}
    for name, method in synthesized.resources("aws_api_gateway_method").items():
        path = path_of(method["resource_id"])
        (integration,) = [i for i in integrations.values()
                          if i["http_method"] == f"${{aws_api_gateway_method.{name}.http_method}}"]
        _, function, _ = _resolve(integration["uri"])
        routes[(method["http_method"].lower(), path)] = functions[function]["handler"]
    return routes


def test_every_declared_route_is_documented_and_every_operation_declared(synthesized):
    declared = declared_routes(synthesized)
    documented = {(method, path) for path, item in openapi.document()["paths"].items()
                  for method in item}
    assert set(declared) == documented
    assert len(declared) >= 4


def test_the_status_function_serves_the_document(synthesized):
    assert declared_routes(synthesized)[("get", openapi.DOCUMENT_PATH)] == \
        "lambda_src.status.handler"


def test_documented_operations_require_the_api_key_the_gateway_requires(synthesized):
    methods = synthesized.resources("aws_api_gateway_method").values()
    assert all(m["api_key_required"] is True for m in methods)
    doc = openapi.document()
    assert doc["security"] == [{"ApiKey": []}]
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert all("security" not in op for item in doc["paths"].values() for op in item.values())
