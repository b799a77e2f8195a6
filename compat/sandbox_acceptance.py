"""A P21 integration script, as an integrator writes it, run end to end
against gatehouse serve --dev --sandbox.

Reads P21_BASE_URL, P21_CONSUMER_KEY and P21_USERNAME (a real user, which
the Interactive API needs) from the environment. It gets a token, reads the
UI server URL, pages through suppliers with $filter/$top/$skip, creates an
order through the Transaction API, reads it back through OData, then opens
Order Entry through the Interactive API, changes a line and saves, and
checks the change through OData. Exits non-zero with a message on the first
failure.
"""
import os
import sys

import httpx

BASE = os.environ["P21_BASE_URL"].rstrip("/")
KEY = os.environ["P21_CONSUMER_KEY"]
USER = os.environ["P21_USERNAME"]


def fail(what, detail):
    print(f"FAILED {what}: {detail}", file=sys.stderr)
    sys.exit(1)


def ok(r, what):
    if r.status_code != 200:
        fail(what, f"{r.status_code} {r.text[:500]}")
    return r.json()


def main():
    client = httpx.Client(timeout=30.0)

    # 1. A token for the consumer key, with the user the Interactive API needs.
    r = client.post(f"{BASE}/api/security/token/v2",
                    json={"GrantType": "client_credentials", "ClientSecret": KEY, "username": USER},
                    headers={"Accept": "application/json"})
    token = ok(r, "token")["AccessToken"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}

    # 2. The UI server URL.
    ui = ok(client.get(f"{BASE}/api/ui/router/v1?urlType=external", headers=headers), "router")["Url"].rstrip("/")

    # 3. Page through active suppliers.
    suppliers, skip, total = [], 0, None
    while True:
        page = ok(client.get(f"{BASE}/odataservice/odata/table/supplier", headers=headers, params={
            "$filter": "row_status_flag eq 704", "$select": "supplier_id,supplier_name",
            "$orderby": "supplier_id", "$top": 20, "$skip": skip, "$count": "true"}), "suppliers page")
        total = page["@odata.count"]
        suppliers.extend(page["value"])
        if not page["value"] or len(suppliers) >= total:
            break
        skip += 20
    if len(suppliers) != total or len({s["supplier_id"] for s in suppliers}) != total:
        fail("paging", f"{len(suppliers)} suppliers of {total}")
    print(f"suppliers: {total} active, read in {skip // 20 + 1} pages")

    # 4. An order through the Transaction API.
    result = ok(client.post(f"{ui}/api/v2/transaction", headers=headers, json={
        "Name": "Order", "UseCodeValues": False,
        "Transactions": [{"Status": "New", "DataElements": [
            {"Name": "TABPAGE_1.order", "Type": "Form", "Keys": [],
             "Rows": [{"Edits": [{"Name": "customer_id", "Value": "100101"},
                                 {"Name": "po_no", "Value": "ACCEPT-1"}], "RelativeDateEdits": []}]},
            {"Name": "TP_ITEMS.items", "Type": "List", "Keys": [],
             "Rows": [{"Edits": [{"Name": "oe_order_item_id", "Value": "FA5-1000"},
                                 {"Name": "unit_quantity", "Value": "2"}], "RelativeDateEdits": []}]}]}]}), "transaction")
    if result["Summary"]["Succeeded"] != 1:
        fail("transaction", result["Messages"])
    edits = result["Results"]["Transactions"][0]["DataElements"][0]["Rows"][0]["Edits"]
    order_no = next(e["Value"] for e in edits if e["Name"] == "order_no")
    print(f"order {order_no} created")

    # 5. Read it back through OData.
    rows = ok(client.get(f"{BASE}/odataservice/odata/table/oe_line", headers=headers, params={
        "$filter": f"order_no eq '{order_no}'", "$select": "line_no,qty_ordered"}), "order lines")["value"]
    if rows != [{"line_no": 1, "qty_ordered": 2}]:
        fail("order through OData", rows)
    hdr = ok(client.get(f"{BASE}/odataservice/odata/table/oe_hdr", headers=headers, params={
        "$filter": f"order_no eq '{order_no}'", "$select": "order_no,po_no,taker"}), "order")["value"]
    if hdr != [{"order_no": order_no, "po_no": "ACCEPT-1", "taker": USER}]:
        fail("order header through OData", hdr)

    # 6. Order Entry through the Interactive API: change the line, save.
    ia = f"{ui}/api/ui/interactive"
    ok(client.post(f"{ia}/sessions/", headers=headers, json={"ResponseWindowHandlingEnabled": False}), "session")
    try:
        window = ok(client.post(f"{ia}/v2/window", headers=headers, json={"ServiceName": "Order"}), "open Order Entry")
        wid = window["WindowId"]
        for what, path, body in [
            ("retrieve", "change", {"WindowId": wid, "List": [{"TabName": "TABPAGE_1", "FieldName": "order_no", "Value": order_no}]}),
            ("items tab", "tab", {"WindowId": wid, "PageName": "TP_ITEMS"}),
            ("first line", "row", {"WindowId": wid, "DatawindowName": "items", "Row": 0}),
            ("quantity", "change", {"WindowId": wid, "List": [{"TabName": "TP_ITEMS", "FieldName": "unit_quantity", "Value": "5", "DatawindowName": "items"}]}),
        ]:
            res = ok(client.put(f"{ia}/v2/{path}", headers=headers, json=body), what)
            if res["Status"] != 1:
                fail(what, res)
        res = ok(client.put(f"{ia}/v2/data", headers=headers, json=wid), "save")
        if res["Status"] != 1:
            fail("save", res)
        client.delete(f"{ia}/v2/window", headers=headers, params={"windowId": wid})
    finally:
        client.delete(f"{ia}/sessions/", headers=headers)

    rows = ok(client.get(f"{BASE}/odataservice/odata/table/oe_line", headers=headers, params={
        "$filter": f"order_no eq '{order_no}'", "$select": "qty_ordered,last_maintained_by"}), "changed line")["value"]
    if rows != [{"qty_ordered": 5, "last_maintained_by": USER}]:
        fail("changed line through OData", rows)
    print(f"order {order_no}: line 1 changed to 5 through Order Entry and saved")
    print("ok")


if __name__ == "__main__":
    main()
