"""The README's generated-client flow: a typed Python client generated from the
product's OpenAPI document by a generator that is not ours (openapi-python-client), used
the way client developers use one, without ever sending X-Consistency-Token.

    python generated_client_flow.py BASE_URL OPENAPI_JSON WORK_DIR [ROUNDS]

It generates the client into WORK_DIR, signs up an organization with an approver and an
employee, then ROUNDS times: the employee creates an expense and reads it, submits and
reads and lists it, the approver approves, the employee reads it, the admin reimburses,
the employee reads it. Every read must show the state just written. Then the employee
uploads a receipt image and downloads it again through the client (following the link to
object storage when the file is kept there), which must give back the very bytes. Prints
one JSON line ({"reads": n, "wrong": n, "first wrong": [...], "file": "same" | what went
wrong}) and exits 1 if any read was wrong or the file did not come back.
"""

import io
import json
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path


def generate(openapi: str, work: Path) -> None:
    generator = Path(sys.executable).with_name("openapi-python-client")
    subprocess.run(
        [str(generator), "generate", "--path", openapi, "--output-path",
         str(work / "expensewise_client"), "--meta", "none", "--overwrite"],
        check=True, capture_output=True,
    )
    sys.path.insert(0, str(work))


def main() -> int:
    base, openapi, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    generate(openapi, work)

    from expensewise_client import AuthenticatedClient, Client
    from expensewise_client.api.accounts import login, register
    from expensewise_client.api.expenses import (approve_expense, create_expense,
                                                 get_expense, list_expenses,
                                                 reimburse_expense, submit_expense)
    from expensewise_client.api.users import create_user
    from expensewise_client.models import (ApproveRequest, CreateExpenseRequest,
                                           CreateUserRequest, EmptyRequest,
                                           ExpenseStatusFilter,
                                           ExpenseView,
                                           LoginRequest, RegisterRequest, RoleView,
                                           SubmitRequest)

    password = "correct horse battery"
    domain = f"{uuid.uuid4().hex[:8]}.test"
    anonymous = Client(base_url=base)
    signed_up = register.sync(client=anonymous, body=RegisterRequest(
        organization="Generated", name="Ada", email=f"ada@{domain}", password=password))
    admin = AuthenticatedClient(base_url=base, token=signed_up.token)

    def sign_in(name: str, role: RoleView) -> AuthenticatedClient:
        email = f"{name}@{domain}"
        create_user.sync(client=admin, body=CreateUserRequest(
            name=name, email=email, password=password, role=role))
        answer = login.sync(client=anonymous, body=LoginRequest(email=email, password=password))
        return AuthenticatedClient(base_url=base, token=answer.token)

    approver = sign_in("bob", RoleView.APPROVER)
    employee = sign_in("eve", RoleView.EMPLOYEE)

    reads, wrong = 0, []

    def expect(step: str, answer, status: str) -> None:
        nonlocal reads
        reads += 1
        got = answer.status.value if isinstance(answer, ExpenseView) else repr(answer)
        if got != status:
            wrong.append(f"{step}: {got} (wanted {status})")

    for n in range(rounds):
        created = create_expense.sync(client=employee, body=CreateExpenseRequest(
            amount="42.50", currency="EUR", merchant=f"Café {n}", category="meals",
            spent_on=date(2026, 1, 15)))
        expect(f"round {n}, create", created, "draft")
        expense = created.id
        expect(f"round {n}, get after create", get_expense.sync(expense, client=employee), "draft")
        submit_expense.sync(expense, client=employee, body=SubmitRequest())
        expect(f"round {n}, get after submit", get_expense.sync(expense, client=employee), "submitted")
        page = list_expenses.sync(client=employee, status=ExpenseStatusFilter.SUBMITTED)
        listed = [e for e in page.items if e.id == expense] if page is not None else []
        expect(f"round {n}, list after submit", listed[0] if listed else None, "submitted")
        approve_expense.sync(expense, client=approver, body=ApproveRequest(comment="fine"))
        expect(f"round {n}, get after approval", get_expense.sync(expense, client=employee), "approved")
        reimburse_expense.sync(expense, client=admin, body=EmptyRequest())
        expect(f"round {n}, get after reimbursement",
               get_expense.sync(expense, client=employee), "reimbursed")

    file = round_trip_a_file(employee)
    print(json.dumps({"reads": reads, "wrong": len(wrong), "first wrong": wrong[:10],
                      "file": file}))
    return 1 if wrong or file != "same" else 0


def round_trip_a_file(employee) -> str:
    """Uploads a small receipt image through the generated client and downloads it."""
    import httpx
    from PIL import Image, ImageDraw
    from expensewise_client.api.receipts import get_receipt_file, upload_receipt
    from expensewise_client.models import UploadForm
    from expensewise_client.types import File

    image = Image.new("L", (240, 120), 255)
    ImageDraw.Draw(image).text((20, 50), "KIOSK  TOTAL 4.20 EUR", fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    png = buffer.getvalue()
    uploaded = upload_receipt.sync_detailed(client=employee, body=UploadForm(
        file=File(payload=io.BytesIO(png), file_name="kiosk.png", mime_type="image/png")))
    if uploaded.status_code not in (201, 202):
        return f"upload answered {uploaded.status_code}: {uploaded.content[:200]!r}"
    receipt = json.loads(uploaded.content)["id"]
    answer = get_receipt_file.sync_detailed(receipt, client=employee)
    body = answer.content
    if answer.status_code == 302:
        body = httpx.get(answer.headers["location"]).content
    elif answer.status_code != 200:
        return f"download answered {answer.status_code}"
    if body != png:
        return f"download gave {len(body)} bytes, not the {len(png)} uploaded"
    return "same"


if __name__ == "__main__":
    sys.exit(main())
