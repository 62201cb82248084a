"""Build small input workbooks for tests, with openpyxl, as finance would type them."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import openpyxl

HEADERS = {
    "Customers": ["Customer ID", "Name", "Email", "Address", "City", "Postal Code", "Country", "Tax Rate"],
    "Contracts": ["Contract ID", "Customer ID", "Start Date", "End Date", "Billing Frequency", "Billing Policy",
                  "Billing Offset (Days)", "Currency", "Payment Terms (Days)", "Discount", "Status"],
    "Subscriptions": ["Subscription ID", "Contract ID", "Product", "Description", "Quantity", "Unit Price",
                      "Start Date", "End Date", "Charge Type"],
    "Usage": ["Usage ID", "Contract ID", "Date", "Product", "Description", "Quantity", "Unit Price"],
    "Settings": ["Key", "Value"],
}


def write_book(path: Path, sheets: dict[str, list[dict]], headers: dict[str, list[str]] | None = None) -> Path:
    """One sheet per entry; each row a dict from header to value (missing keys are blank)."""
    headers = {**HEADERS, **(headers or {})}
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        ws.append(headers[name])
        for row in rows:
            ws.append([row.get(h) for h in headers[name]])
        for cells in ws.iter_rows(min_row=2):
            for cell in cells:
                if isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
    wb.save(path)
    return path


def customer(cid="CUST-1", **kw) -> dict:
    return {"Customer ID": cid, "Name": f"Customer {cid}", "Email": f"{cid.lower()}@example.com",
            "Address": "1 Main Street", "City": "Springfield", "Postal Code": "12345", "Country": "US",
            "Tax Rate": 0, **kw}


def contract(cid="CTR-1", customer_id="CUST-1", start=date(2026, 1, 1), **kw) -> dict:
    return {"Contract ID": cid, "Customer ID": customer_id, "Start Date": start,
            "Billing Frequency": "Monthly", **kw}


def subscription(sid="SUB-1", contract_id="CTR-1", quantity=1, price=100, **kw) -> dict:
    return {"Subscription ID": sid, "Contract ID": contract_id, "Product": "Platform", "Description": "Seats",
            "Quantity": quantity, "Unit Price": price, **kw}


def usage(uid="USG-1", contract_id="CTR-1", day=date(2026, 1, 15), quantity=10, price=2, **kw) -> dict:
    return {"Usage ID": uid, "Contract ID": contract_id, "Date": day, "Product": "API calls",
            "Description": "metered", "Quantity": quantity, "Unit Price": price, **kw}


def settings(**kw) -> list[dict]:
    values = {"Company Name": "Acme Billing Ltd", "Company Address": "1 Infinite Loop\nCupertino",
              "Invoice Prefix": "INV-", "Default Currency": "USD", "Locale": "en_US", **kw}
    return [{"Key": k, "Value": v} for k, v in values.items()]


def simple_book(path: Path, **extra_sheets) -> Path:
    """Two customers, two monthly contracts from 2026-01-01, one recurring subscription each."""
    sheets = {
        "Customers": [customer("CUST-1"), customer("CUST-2", **{"Tax Rate": 0.2})],
        "Contracts": [contract("CTR-1", "CUST-1"), contract("CTR-2", "CUST-2")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 2, 50), subscription("SUB-2", "CTR-2", 1, 1000)],
        "Settings": settings(),
        **extra_sheets,
    }
    return write_book(path, sheets)
