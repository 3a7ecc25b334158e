import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from adminops.models import AuditAction, AuditLog, Job
from config.caching import CacheType
from config.services import tool_running
from products.models import Product
from products.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/tools/import-products/"

GOOD_AND_BAD = """name,slug,brand,category,is_active,tags,attributes,image_url
Quiet Mouse,quiet-mouse,Acme,mice,yes,silent|wireless,"{""dpi"": 800}",
,no-name,Acme,mice,,,,
Loud Mouse,,Acme,mice,maybe,,,
Bad Attrs,bad-attrs,Acme,mice,,,"[1, 2]",
Bad Url,bad-url,Acme,mice,,,,not a url
Quiet Mouse Again,quiet-mouse,Acme,mice,,,,
Pad,pad,,desk,false,,,
"""


@pytest.fixture
def run_import(run_tool):
    def run(text: str, all_or_nothing: bool = False) -> dict:
        return run_tool("import-products", {"csv": text, "all_or_nothing": all_or_nothing})

    return run


def test_import_reports_created_and_every_rejected_row_with_reasons(run_import):
    job = run_import(GOOD_AND_BAD)
    assert job["status"] == "succeeded"
    report = job["report"]
    assert (report["rows"], report["created"], report["updated"]) == (7, 2, 0)
    rejected = {r["line"]: r for r in report["rejected"]}
    assert sorted(rejected) == [3, 4, 5, 6, 7]
    assert "name" in rejected[3]["errors"]
    assert rejected[4]["slug"] == "loud-mouse"
    assert "is_active" in rejected[4]["errors"]
    assert "attributes" in rejected[5]["errors"]
    assert "image_url" in rejected[6]["errors"]
    assert "line 2" in rejected[7]["errors"]["slug"][0]
    mouse = Product.objects.select_related("metadata").get(slug="quiet-mouse")
    assert mouse.metadata.tags == ["silent", "wireless"]
    assert mouse.metadata.attributes == {"dpi": 800}
    assert Product.objects.get(slug="pad").is_active is False
    assert sorted(Product.objects.values_list("slug", flat=True)) == ["pad", "quiet-mouse"]


def test_import_updates_by_slug_and_a_second_run_changes_nothing(run_import):
    ProductFactory(slug="quiet-mouse", name="Old name", brand="Old", category="mice")
    text = "name,slug,category\nQuiet Mouse,quiet-mouse,mice\nPad,pad,desk\n"
    first = run_import(text)["report"]
    assert (first["created"], first["updated"], first["unchanged"]) == (1, 1, 0)
    product = Product.objects.get(slug="quiet-mouse")
    assert product.name == "Quiet Mouse"
    assert product.brand == "Old"
    second = run_import(text)["report"]
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert Product.objects.count() == 2


def test_all_or_nothing_fails_the_job_and_writes_nothing_when_a_row_is_rejected(run_import):
    ProductFactory(slug="pad", name="Pad", category="desk", is_active=True)
    job = run_import(GOOD_AND_BAD, all_or_nothing=True)
    assert job["status"] == "failed"
    assert job["error"] == "5 rows rejected; nothing was imported."
    body = job["report"]
    assert body["applied"] is False
    assert len(body["rejected"]) == 5
    assert list(Product.objects.values_list("slug", flat=True)) == ["pad"]
    assert Product.objects.get(slug="pad").is_active is True
    entry = AuditLog.objects.get(action=AuditAction.PRODUCTS_IMPORT)
    assert entry.data["applied"] is False


def test_all_or_nothing_applies_a_clean_file(run_import):
    job = run_import("name,category\nA,mice\nB,mice\n", all_or_nothing=True)
    assert job["report"]["created"] == 2
    assert job["progress"] == {"done": 2, "total": 2}


def test_import_as_multipart_upload(run_tool):
    upload = SimpleUploadedFile(
        "products.csv", "\ufeffname,category\nUploaded,mice\n".encode(), "text/csv"
    )
    job = run_tool("import-products", {"file": upload}, fmt="multipart")
    assert job["status"] == "succeeded"
    assert Product.objects.filter(slug="uploaded").exists()


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        ({"csv": "name,colour\nA,red\n"}, "json", "Unknown columns: colour"),
        ({"csv": "name,brand\nA,Acme\n"}, "json", "Missing required columns: category"),
        ({"csv": ""}, "json", "csv"),
        ({}, "json", "either as `file` or as `csv`"),
        ({"file": "not-a-file"}, "multipart", "file"),
    ],
)
def test_unreadable_csv_is_400_and_queues_nothing(staff_client, body, fmt, message):
    response = staff_client.post(URL, body, format=fmt)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Product.objects.exists()
    assert not Job.objects.exists()


def test_non_utf8_upload_is_400(staff_client):
    upload = SimpleUploadedFile("p.csv", "name,category\nCafé,x\n".encode("latin-1"))
    response = staff_client.post(URL, {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert "UTF-8" in response.json()["detail"]


def test_import_invalidates_product_caches(run_import, fill_cache):
    still_cached = fill_cache(CacheType.PRODUCTS)
    run_import("name,category\nA,mice\n")
    assert not still_cached()


def test_import_products_command_prints_report_and_rejections(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    out = io.StringIO()
    call_command("import_products", str(path), stdout=out)
    output = out.getvalue()
    assert "7 rows: 2 created, 0 updated, 0 unchanged, 5 rejected." in output
    assert "line 6 (bad-url)" in output
    entry = AuditLog.objects.get(action=AuditAction.PRODUCTS_IMPORT)
    assert entry.actor is None


def test_import_products_command_all_or_nothing_fails_and_writes_nothing(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_products", str(path), "--all-or-nothing", stdout=io.StringIO())
    assert not Product.objects.exists()


def test_import_while_the_command_imports_fails_the_job_and_writes_nothing(run_import):
    with tool_running(name="import_products"):
        job = run_import("name,category\nA,mice\n")
    assert job["status"] == "failed"
    assert "already running" in job["error"]
    assert not Product.objects.exists()
    assert run_import("name,category\nA,mice\n")["status"] == "succeeded"


def test_attributes_nested_too_deeply_reject_the_row_not_the_request(run_import):
    nested = "[" * 5000 + "]" * 5000
    text = f'name,slug,category,attributes\nDeep,deep,mice,"{nested}"\n'
    job = run_import(text)
    assert job["status"] == "succeeded"
    assert "attributes" in job["report"]["rejected"][0]["errors"]
    assert not Product.objects.filter(slug="deep").exists()
