"""openapi.py: the OpenAPI 3.1 document has the app's routes (its url_map, which a test holds
against API.md's), each with the operation declared for it, built from validation's schemas."""

import re

import pytest
from jsonschema import Draft202012Validator

from helpers import API_ROUTES as ROUTES
from helpers import NOT_YET_IN_CONTRACT, NOT_YET_SERVED, ROOT
from predictionservice import openapi, validation
from predictionservice.exceptions import NotFound
from predictionservice.jobstore import COMPLETED, JobStore, public_view
from web.meta import api_routes

API_MD = ROOT / "docs" / "API.md"
SHARED_API_MD = ROOT.parent / "shared" / "API.md"  # the team's contract, beside a checkout

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture()
def routes(base_params):
    from modelservice import modelservice

    return api_routes(modelservice(base_params).url_map)


@pytest.fixture()
def document(base_params, routes):
    return openapi.openapi_document(routes, max_records=base_params["max_records_per_request"])


def walk(node, path=()):
    """Every (path, dict) inside a JSON document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, i))


def resolve_pointer(document, ref):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve at {part!r}"
        node = node[part]
    return node


def operations(document):
    for route, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield route, method, operation


def test_the_repository_carries_the_contract_as_the_team_wrote_it():
    """docs/API.md is the shared contract, copied: a clone has no ../shared."""
    if not SHARED_API_MD.exists():
        pytest.skip(f"{SHARED_API_MD} is not beside this checkout")
    assert API_MD.read_text() == SHARED_API_MD.read_text(), "copy ../shared/API.md to docs/API.md"


JOB_ROUTES = ("/training/", "/predictall/", "/jobs/")


def test_the_route_table_matches_api_md():
    """The expectation above is API.md's: every route heading of it is listed here, served or
    named as not served yet."""
    text = API_MD.read_text()
    headed = set()
    for method, route in re.findall(r"(GET|POST|PUT|DELETE) (/[\w/<>.{}-]*)", text):
        route = re.sub(r"<(\w+)>", r"{\1}", route)
        if route.startswith(JOB_ROUTES):  # the contract's <id> of a job is the service's {job_id}
            route = route.replace("{id}", "{job_id}")
        headed.add((method.lower(), route))
    expected = {(method, route) for route, methods in ROUTES.items() for method in methods}
    pending = {(method, route) for route, methods in NOT_YET_SERVED.items() for method in methods}
    ahead = {(method, route) for route, methods in NOT_YET_IN_CONTRACT.items() for method in methods}
    assert not expected & pending
    assert ahead <= expected and not headed & ahead  # served, and named here until the contract names them
    assert headed == (expected - ahead) | pending


def test_every_route_has_an_operation_and_every_operation_a_route(routes):
    """A new route can't ship undocumented, nor a documented operation lose its route."""
    assert openapi.coverage(routes) == []
    assert len(routes) == sum(len(methods) for methods in ROUTES.values())


def test_coverage_names_a_route_without_an_operation_and_an_operation_without_a_route(routes):
    new = openapi.Route("/models/{key}/explain", "post", "models.explain")
    problems = openapi.coverage([*routes, new])
    assert problems == [
        "POST /models/{key}/explain (endpoint 'models.explain') has no operation: declare its summary and "
        "responses in predictionservice/openapi.py"
    ]
    assert "models.explain" not in repr(openapi.openapi_document([*routes, new], max_records=1)["paths"])
    without_health = [route for route in routes if route.endpoint != "meta.health"]
    assert openapi.coverage(without_health) == [
        "operation 'meta.health' of predictionservice/openapi.py is answered by no route"
    ]
    renamed = openapi.Route("/models/{model}", "get", "models.show_model")
    assert "path parameter {model} has no description in PATH_PARAMETERS" in openapi.coverage([renamed])


def test_an_endpoint_of_several_methods_needs_an_operation_per_method():
    routes = [openapi.Route("/jobs/{job_id}", method, "jobs.any_job", only_method=False) for method in ("get", "put")]
    assert [route.key for route in routes] == ["jobs.any_job get", "jobs.any_job put"]
    assert sum("has no operation" in problem for problem in openapi.coverage(routes)) == 2


def test_document_header(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Prediction service"
    assert document["info"]["version"] == openapi.VERSION


def test_every_route_of_api_md_with_its_methods(document):
    assert set(document["paths"]) == set(ROUTES)
    for route, methods in ROUTES.items():
        assert set(document["paths"][route]) - {"parameters"} == methods, route


def test_success_statuses(document):
    paths = document["paths"]
    assert set(paths["/train/"]["post"]["responses"]) >= {"202", "400"}
    assert "Location" in paths["/train/"]["post"]["responses"]["202"]["headers"]
    assert "202" in paths["/predictall/"]["post"]["responses"]
    assert "204" in paths["/models/{key}"]["delete"]["responses"]
    assert "404" in paths["/models/{key}"]["delete"]["responses"]
    assert "204" in paths["/datasets/{db}/{collection}"]["delete"]["responses"]
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}
    for route in ("/training/status/{job_id}", "/predictall/status/{job_id}", "/jobs/{job_id}"):
        assert set(paths[route]["get"]["responses"]) == {"200", "401", "404", "503"}


# Operations that read no store, or (/metrics) answer without it: Redis down is redis_up 0.
NO_STORE = {"/openapi.json", "/v2/health/live", "/v2", "/metrics", "/docs"}


def test_every_operation_on_a_store_can_be_503_and_health_503_is_an_error_too(document):
    for route, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                assert ("503" in operation["responses"]) is (route not in NO_STORE), (method, route)
    down = document["paths"]["/health"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert {"error", "status", "redis", "mongo", "workers"} <= {
        key for part in down["allOf"] for key in part.get("required", [])
    }
    assert "E405" in document["components"]["responses"]


def test_every_path_template_parameter_is_declared(document):
    for route, item in document["paths"].items():
        names = re.findall(r"{(\w+)}", route)
        declared = [p for p in item.get("parameters", []) if p["in"] == "path"]
        assert [p["name"] for p in declared] == names, route
        assert all(p["required"] is True for p in declared)


def test_query_parameters(document):
    schema_route = document["paths"]["/datasets/{db}/{collection}/schema"]["get"]
    label, task, *choices = schema_route["parameters"]
    assert [p["name"] for p in choices] == ["categorical", "exclude", "ignore_unknown"]
    assert label == {"name": "label", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}}
    assert task["name"] == "task" and not task["required"]
    assert task["schema"] == {"enum": ["classification", "regression"]}
    put = document["paths"]["/datasets/{db}/{collection}"]["put"]
    assert put["parameters"][0]["name"] == "mode" and put["parameters"][0]["schema"]["enum"] == ["replace", "append"]
    assert set(put["requestBody"]["content"]) == {"text/csv", "application/json"}


def test_every_ref_resolves(document):
    refs = [(path, node["$ref"]) for path, node in walk(document) if "$ref" in node]
    assert len(refs) > 20
    for path, ref in refs:
        target = resolve_pointer(document, ref)
        assert isinstance(target, dict) and target, (path, ref)


def test_every_operation_has_a_summary_and_responses(document):
    count = 0
    for route, method, operation in operations(document):
        count += 1
        assert operation["summary"], (route, method)
        assert operation["responses"], (route, method)
        for status in operation["responses"]:
            assert re.fullmatch(r"[1-5]\d\d", status), (route, method, status)
    assert count == sum(len(m) for m in ROUTES.values())


def embedded_schemas(document):
    for path, node in walk(document):
        if "schema" in node and path and path[-1] not in ("properties",):
            schema = node["schema"]
            if isinstance(schema, dict) and path[-1] != "schemas":
                yield path, schema
    for name, schema in document["components"]["schemas"].items():
        yield ("components", "schemas", name), schema


def test_every_embedded_schema_is_a_valid_draft_2020_12_schema(document):
    checked = 0
    for _path, schema in embedded_schemas(document):
        Draft202012Validator.check_schema(schema)
        checked += 1
    assert checked >= 30


def test_the_request_bodies_are_the_validation_schemas(document, base_params):
    paths = document["paths"]
    train = paths["/train/"]["post"]["requestBody"]
    assert train["required"] is True
    assert train["content"]["application/json"]["schema"] is validation.JOB
    assert paths["/predictall/"]["post"]["requestBody"]["content"]["application/json"]["schema"] is (
        validation.PREDICTALL
    )
    predict = paths["/predict/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert predict == validation.predict_schema(base_params["max_records_per_request"])
    assert predict["properties"]["records"]["maxItems"] == 10_000
    assert document["components"]["schemas"]["Job"] is validation.JOB
    assert document["components"]["schemas"]["Schema"] is validation.SCHEMA_BLOCK


def test_the_predict_limit_follows_the_setting(routes):
    document = openapi.openapi_document(routes, max_records=7)
    predict = document["paths"]["/predict/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert predict["properties"]["records"]["maxItems"] == 7


def test_no_security_without_a_token(document):
    assert "security" not in document
    assert "securitySchemes" not in document["components"]


def test_a_bearer_scheme_when_a_token_is_set(routes):
    document = openapi.openapi_document(routes, max_records=10, secured=True)
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/health"]["get"]["security"] == []  # /health needs no token
    assert "s3cret" not in repr(document)


def test_the_error_body_schema_describes_service_errors(document):
    error_schema = resolve_pointer(document, "#/components/responses/E404")["content"]["application/json"]["schema"]
    Draft202012Validator(error_schema).validate(NotFound("model 'x' not found").to_dict())
    assert list(Draft202012Validator(error_schema).iter_errors({"error": {"code": "x"}}))


def test_the_job_status_schema_describes_public_views(document, redis_db):
    jobs = JobStore(redis_db, 60)
    jobs.create("j1", "training", {})
    status_schema = document["paths"]["/jobs/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    validator = Draft202012Validator(status_schema)
    validator.validate(public_view(jobs.get("j1")))
    jobs.update("j1", COMPLETED, "trained", model_key="j1", metrics={"auc": 0.9}, invalid_rows=0)
    view = public_view(jobs.get("j1"))
    validator.validate(view)
    assert list(validator.iter_errors({**view, "status": "SUCCESS"}))


def query_parameters(document):
    return {
        (route, p["name"])
        for route, item in document["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict)
        for p in operation.get("parameters", [])
        if p["in"] == "query"
    }


def test_every_query_parameter_the_views_read_is_in_the_document(document):
    """Each name web/ reads from the query string (request.args, and _choice for filters) is a
    query parameter of some route, and of the routes that read it."""
    source = "".join(path.read_text() for path in (ROOT / "web").glob("*.py"))
    read = set(re.findall(r'request\.args\.get\("(\w+)"', source)) | set(re.findall(r'_choice\("(\w+)"', source))
    assert read >= {"history", "kind", "status", "limit", "format", "mode", "on_error", "label"}
    listed = query_parameters(document)
    assert read == {name for _, name in listed}
    expected = {
        ("/jobs/", "kind"), ("/jobs/", "status"), ("/jobs/", "limit"),
        ("/training/status/{job_id}", "history"), ("/predictall/status/{job_id}", "history"),
        ("/jobs/{job_id}", "history"), ("/datasets/{db}/{collection}/export", "format"),
        ("/datasets/{db}/{collection}", "mode"), ("/datasets/{db}/{collection}", "on_error"),
        ("/datasets/{db}/{collection}/schema", "label"),
        ("/datasets/{db}/{collection}/schema", "task"), ("/datasets/{db}/{collection}/schema", "categorical"),
        ("/datasets/{db}/{collection}/schema", "exclude"), ("/datasets/{db}/{collection}/schema", "ignore_unknown"),
        ("/audit/", "limit"),
        ("/registry/{name}/monitor", "since"), ("/registry/{name}/monitor", "version"),
    }  # fmt: skip
    assert listed == expected
