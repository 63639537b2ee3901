"""The check that holds the Acumatica sandbox to Acumatica's OpenAPI definition can fail.

Known-good and known-bad answers go through `AcumaticaContract.check`, and through the
`OpenAPICheck` wrapper around a small ASGI app, so a sandbox answer outside the
definition (a field it lacks, a `null` where it types a string, a number as a string,
a body where it has none) is caught and reported with method, path, status and reason.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from tests.contracts.acumatica_openapi import (
    API_PREFIX,
    AcumaticaContract,
    OpenAPICheck,
    Report,
)

JSON = "application/json; charset=utf-8"
ORDER_ID = "8d4b5c7e-1f2a-4b3c-9d8e-0a1b2c3d4e5f"


@pytest.fixture(scope="module")
def contract() -> AcumaticaContract:
    return AcumaticaContract.load()


def order(**members: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": ORDER_ID,
        "rowNumber": 1,
        "note": {"value": ""},
        "OrderType": {"value": "SO"},
        "OrderNbr": {"value": "000001"},
        "OrderTotal": {"value": 24.63},
        "Description": {},
        "Date": {"value": "2026-11-22T00:00:00+00:00"},
        "Details": [
            {"id": ORDER_ID, "rowNumber": 1, "LineNbr": {"value": 1}, "custom": {}},
        ],
        "custom": {},
        "_links": {"self": "/x", "files:put": "/x/files/{filename}"},
    }
    record.update(members)
    return record


def check_get(contract: AcumaticaContract, body: Any, status: int = 200) -> tuple[str, ...]:
    outcome = contract.check(
        "GET", f"{API_PREFIX}/SalesOrder/SO/000001", status, JSON, json.dumps(body).encode()
    )
    assert outcome.covered
    return outcome.problems


def test_a_record_as_the_definition_has_it_passes(contract: AcumaticaContract) -> None:
    assert check_get(contract, order()) == ()


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"CustomerOrderNbr": {"value": "1001"}}, "'CustomerOrderNbr' was unexpected"),
        ({"Description": {"value": None}}, "Description/value: None is not of type 'string'"),
        ({"OrderTotal": {"value": "24.63"}}, "OrderTotal/value: '24.63' is not of type 'number'"),
        ({"OrderNbr": "000001"}, "OrderNbr: '000001' is not of type 'object'"),
        ({"OrderNbr": {"value": "1", "text": "1"}}, "'text' was unexpected"),
        ({"Date": {"value": "22/11/2026"}}, "Date/value: '22/11/2026' is not a 'date-time'"),
        ({"id": "SO000001"}, "id: 'SO000001' is not a 'uuid'"),
        ({"_links": {"next": "/y"}}, "_links: not an object of"),
    ],
)
def test_an_answer_outside_the_definition_is_caught(
    contract: AcumaticaContract, members: dict[str, Any], expected: str
) -> None:
    problems = check_get(contract, order(**members))
    assert any(expected in problem for problem in problems), problems


def test_detail_rows_are_held_to_their_own_schema(contract: AcumaticaContract) -> None:
    row = {"id": ORDER_ID, "LineNbr": {"value": 1}, "LineNumber": {"value": 1}}
    problems = check_get(contract, order(Details=[row]))
    assert problems == (
        "Details/0: Additional properties are not allowed ('LineNumber' was unexpected)",
    )


def test_errors_follow_http_error(contract: AcumaticaContract) -> None:
    good = {"message": "An error has occurred.", "exceptionMessage": "x", "modelState": {}}
    assert check_get(contract, good, status=500) == ()
    bad = {**good, "messageDetail": None}
    assert check_get(contract, bad, status=500) == ("messageDetail: None is not of type 'string'",)


def test_a_list_is_an_array_of_records(contract: AcumaticaContract) -> None:
    path = f"{API_PREFIX}/SalesOrder"
    good = contract.check("GET", path, 200, JSON, json.dumps([order(), order()]).encode())
    assert good.covered and good.problems == ()
    bad = contract.check("GET", path, 200, JSON, json.dumps(order()).encode())
    assert bad.problems and "is not of type 'array'" in bad.problems[0]


def test_answers_without_content_must_be_empty(contract: AcumaticaContract) -> None:
    path = f"{API_PREFIX}/SalesOrder/CancelSalesOrder"
    assert contract.check("POST", path, 202, "", b"").problems == ()
    assert contract.check("POST", path, 202, JSON, b'{"x": 1}').problems
    assert contract.check("DELETE", f"{API_PREFIX}/SalesOrder/SO/1", 204, "", b"").problems == ()


def test_a_body_that_is_not_json_or_not_json_typed_is_a_violation(
    contract: AcumaticaContract,
) -> None:
    path = f"{API_PREFIX}/SalesOrder/SO/000001"
    assert contract.check("GET", path, 200, "text/plain", b"{}").problems
    assert contract.check("GET", path, 200, JSON, b"<html>").problems


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", f"{API_PREFIX}/SalesOrder/SO/000001", "/SalesOrder/{ids}"),
        ("GET", f"{API_PREFIX}/SalesInvoice/Credit Memo/000001", "/SalesInvoice/{ids}"),
        ("GET", f"{API_PREFIX}/SalesOrder/{ORDER_ID}", "/SalesOrder/{id}"),
        ("PUT", f"{API_PREFIX}/Payment", "/Payment"),
        ("PUT", f"{API_PREFIX}/StockItem/W-1/files/a.png", "/StockItem/{ids}/files/{filename}"),
        ("POST", f"{API_PREFIX}/Shipment/ConfirmShipment", "/Shipment/ConfirmShipment"),
        ("POST", f"{API_PREFIX}/Shipment/SomethingElse", "/Shipment/{actionName}"),
    ],
)
def test_operations_are_found_by_the_path_shape(
    contract: AcumaticaContract, method: str, path: str, operation: str
) -> None:
    template, label = contract.template(method, path)
    assert template == operation and label == f"{method} {API_PREFIX}{operation}"


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("POST", "/entity/auth/login", 204, "no operation in the definition"),
        ("POST", "/identity/connect/token", 200, "no operation in the definition"),
        ("GET", f"{API_PREFIX}/Payment/ReleasePayment/status/{ORDER_ID}", 204, "no operation"),
        ("GET", f"{API_PREFIX}/Bill", 200, "no operation in the definition"),
        ("GET", f"{API_PREFIX}/Customer/C1", 429, "status 429 not described"),
        ("PUT", f"{API_PREFIX}/Customer/C1", 200, "PUT not defined"),
    ],
)
def test_what_the_definition_does_not_describe_is_not_covered(
    contract: AcumaticaContract, method: str, path: str, status: int, reason: str
) -> None:
    outcome = contract.check(method, path, status, JSON, b"{}")
    assert not outcome.covered and reason in outcome.reason


async def test_the_wrapper_records_every_answer_and_leaves_it_unchanged(
    contract: AcumaticaContract,
) -> None:
    app = FastAPI()
    bad = order(Description={"value": None})

    @app.get("/acumatica/entity/Default/24.200.001/SalesOrder/{kind}/{nbr}")
    async def get_order(kind: str, nbr: str) -> Response:
        body = bad if nbr == "bad" else order()
        return Response(json.dumps(body), media_type="application/json")

    @app.post("/acumatica/entity/auth/login")
    async def login() -> Response:
        return Response(status_code=204)

    @app.get("/acumatica/_sandbox/state")
    async def state() -> dict[str, Any]:
        return {"anything": None}

    report = Report()
    transport = httpx.ASGITransport(app=OpenAPICheck(app, contract, report))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        good = await client.get("/acumatica/entity/Default/24.200.001/SalesOrder/SO/000001")
        served = await client.get("/acumatica/entity/Default/24.200.001/SalesOrder/SO/bad")
        await client.post("/acumatica/entity/auth/login")
        await client.get("/acumatica/_sandbox/state")

    assert good.json() == order() and served.json() == bad
    assert report.validated == {"GET /entity/Default/24.200.001/SalesOrder/{ids} -> 200": 2}
    assert report.not_covered == {
        "POST /entity/auth/login -> 204 (no operation in the definition)": 1
    }
    (violation,) = report.unclaimed()
    assert (violation.method, violation.path, violation.status) == (
        "GET",
        "/entity/Default/24.200.001/SalesOrder/SO/bad",
        200,
    )
    assert violation.problems == ("Description/value: None is not of type 'string'",)
    assert report.unclaimed() == []
