"""exceptions.py: codes, HTTP statuses (API.md: Errors) and the JSON error body."""

from pathlib import Path

import pytest

from predictionservice import exceptions as ex

# What API.md's "Errors" section promises for each kind of failure.
API_STATUS = {
    "invalid_json": 400,  # malformed JSON
    "invalid_request": 400,  # a field missing or of the wrong type
    "invalid_record": 400,
    "invalid_schema": 400,
    "invalid_dataset": 400,
    "unknown_algorithm": 400,  # "any other name is 400"
    "forbidden_target": 400,
    "invalid_host": 400,  # issue 11: a Host header that is not a name of the server (DNS rebinding)
    "unauthorized": 401,
    "forbidden": 403,  # a page's form without its CSRF token, or posted from another site
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,  # issue 11: an append whose _id is already stored (not in API.md's list yet)
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "too_many_requests": 429,  # issue 11: the job queue is full (not in API.md's list yet)
    "service_unavailable": 503,
    "internal_error": 500,
    # HTTP-level refusals of the server, before any route (not in API.md's list)
    "request_timeout": 408,
    "uri_too_long": 414,
    "not_implemented": 501,
    "http_version_not_supported": 505,
}

CLASSES = {
    ex.ServiceError: "internal_error",
    ex.InvalidRequest: "invalid_request",
    ex.InvalidJSON: "invalid_json",
    ex.InvalidSchema: "invalid_schema",
    ex.InvalidDataset: "invalid_dataset",
    ex.UnknownAlgorithm: "unknown_algorithm",
    ex.ForbiddenTarget: "forbidden_target",
    ex.InvalidHost: "invalid_host",
    ex.Conflict: "conflict",
    ex.Unauthorized: "unauthorized",
    ex.Forbidden: "forbidden",
    ex.NotFound: "not_found",
    ex.MethodNotAllowed: "method_not_allowed",
    ex.PayloadTooLarge: "payload_too_large",
    ex.UnsupportedMediaType: "unsupported_media_type",
    ex.ServiceUnavailable: "service_unavailable",
}


def test_every_code_maps_to_the_status_api_md_lists():
    assert ex.STATUS == API_STATUS


def test_only_client_mistakes_are_4xx_and_only_internal_error_is_500():
    assert [code for code, status in ex.STATUS.items() if status >= 500] == [
        "service_unavailable",
        "internal_error",
        "not_implemented",
        "http_version_not_supported",
    ]


@pytest.mark.parametrize(("cls", "code"), list(CLASSES.items()), ids=[c.__name__ for c in CLASSES])
def test_each_error_class_has_its_code_and_status(cls, code):
    error = cls("something went wrong")
    assert error.code == code
    assert error.status == API_STATUS[code]
    assert error.message == "something went wrong" == str(error)
    assert isinstance(error, ex.ServiceError)


def test_to_dict_shape():
    error = ex.InvalidRequest("job: 'numFolds' is too small", details=[{"field": "numFolds", "problem": "too small"}])
    assert error.to_dict() == {
        "error": {
            "code": "invalid_request",
            "message": "job: 'numFolds' is too small",
            "details": [{"field": "numFolds", "problem": "too small"}],
        }
    }


def test_details_default_to_a_fresh_empty_list():
    first, second = ex.NotFound("a"), ex.NotFound("b")
    assert first.to_dict() == {"error": {"code": "not_found", "message": "a", "details": []}}
    first.details.append("x")
    assert second.details == []


def test_a_code_given_at_construction_overrides_the_class_code():
    error = ex.ServiceError("gone", code="not_found")
    assert error.code == "not_found" and error.status == 404
    assert ex.ServiceError("boom").status == 500
    assert ex.ServiceError.code == "internal_error"  # the class attribute is untouched


@pytest.mark.parametrize(
    ("error", "cls", "field", "problem"),
    [
        (ex.NotNumeric("age", "is not a number"), ex.NotNumeric, "age", "is not a number"),
        (ex.MissingField("job"), ex.MissingField, "job", "is missing"),
        (ex.UnknownCategory("month", "is not a category"), ex.UnknownCategory, "month", "is not a category"),
        (ex.RecordError("record", "is not an object"), ex.RecordError, "record", "is not an object"),
    ],
)
def test_record_error_at_keeps_type_field_and_problem_and_places_the_index(error, cls, field, problem):
    assert error.code == "invalid_record" and error.status == 400
    assert error.index is None
    assert error.message == f"field '{field}' {problem}"
    assert error.details == [{"field": field, "problem": problem}]

    placed = error.at(7)
    assert type(placed) is cls
    assert (placed.field, placed.problem, placed.index) == (field, problem, 7)
    assert placed.message == f"record 7: field '{field}' {problem}"
    assert placed.details == [{"field": field, "problem": problem, "index": 7}]
    assert placed.to_dict()["error"]["message"] == f"record 7: field '{field}' {problem}"
    assert error.index is None and error.message == f"field '{field}' {problem}"  # the original is unchanged

    removed = placed.at(None)
    assert type(removed) is cls
    assert removed.index is None
    assert removed.message == f"field '{field}' {problem}"
    assert removed.details == [{"field": field, "problem": problem}]


def test_record_zero_is_an_index_too():
    placed = ex.NotNumeric("age", "is not a number").at(0)
    assert placed.message == "record 0: field 'age' is not a number"
    assert placed.details == [{"field": "age", "problem": "is not a number", "index": 0}]


def test_the_manual_lists_every_error_code():
    page = (Path(__file__).resolve().parent.parent / "docs" / "http-api.md").read_text()
    assert [code for code in ex.STATUS if f"`{code}`" not in page] == []
