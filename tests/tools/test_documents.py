"""documents_generate: real .docx, .xlsx and .pdf files from templates and data, stored with a link."""

from __future__ import annotations

import io

import pytest

from tools.services.compensation import compensate_group
from tools.services.invocation import invoke_tool
from tools.storage import OrgStorage
from tools.types import InvocationContext

pytestmark = pytest.mark.django_db

OFFER_DATA = {"candidate_name": "Maria López", "position": "QA Engineer", "start_date": "1 March 2026",
              "manager_name": "Dana Kim", "salary": "€58,000", "signer_name": "Alex Owner"}


def _generate(tenant, context=None, **arguments):
    return invoke_tool(organization=tenant.organization, actor=tenant.member, tool_name="documents_generate",
                       arguments=arguments, context=context)


def _read(tenant, path):
    return OrgStorage(tenant.organization.pk).read(path)


def test_offer_letter_docx(tenant_a):
    """The offer letter template makes a .docx with every placeholder filled, in the organization's files."""
    from docx import Document

    result = _generate(tenant_a, format="docx", template="offer_letter", data=OFFER_DATA, filename="offer-maria")
    assert result.ok, result.reason
    assert result.result["path"] == "documents/offer-maria.docx"
    assert result.result["download_url"].endswith("?path=documents/offer-maria.docx")
    text = "\n".join(p.text for p in Document(io.BytesIO(_read(tenant_a, result.result["path"]))).paragraphs)
    assert "Dear Maria López," in text
    assert "QA Engineer at Acme Corp" in text
    assert "reporting to Dana Kim" in text
    assert "{{" not in text


def test_missing_data_names_the_placeholder(tenant_a):
    """A template whose data is incomplete fails and names what is missing; no file is written."""
    result = _generate(tenant_a, format="docx", template="offer_letter", data={"candidate_name": "M"},
                       filename="x")
    assert result.code == "missing_data"
    assert "position" in result.reason
    assert not OrgStorage(tenant_a.organization.pk).exists("documents/x.docx")


def test_xlsx_table_and_formula_injection(tenant_a):
    """A table becomes a sheet; a cell that looks like a formula is stored as text."""
    from openpyxl import load_workbook

    rows = [["Maria", 58000, "=HYPERLINK(\"http://evil\")"], ["Dana", 72000, "ok"]]
    result = _generate(tenant_a, format="xlsx", template="table", filename="salaries",
                       data={"title": "Salaries", "columns": ["Name", "Salary", "Note"], "rows": rows})
    assert result.ok, result.reason
    sheet = load_workbook(io.BytesIO(_read(tenant_a, result.result["path"]))).active
    assert sheet["A1"].value == "Salaries"
    assert [c.value for c in sheet[3]] == ["Name", "Salary", "Note"]
    assert sheet["B4"].value == 58000
    assert sheet["C4"].value.startswith("'=")


def test_pdf_with_unicode(tenant_a):
    """A PDF is written (real %PDF header) and non-Latin text does not break it."""
    result = _generate(tenant_a, format="pdf", filename="letter",
                       content={"title": "Привет, Zoë", "paragraphs": ["Línea uno", "二行目"],
                                "table": {"columns": ["a", "b"], "rows": [["1", "2"]]}})
    assert result.ok, result.reason
    data = _read(tenant_a, result.result["path"])
    assert data.startswith(b"%PDF")
    assert result.result["size"] == len(data)


def test_organization_docx_template(tenant_a):
    """An organization's own .docx template is filled, placeholders split across runs included."""
    from docx import Document

    template = Document()
    paragraph = template.add_paragraph("Hello ")
    paragraph.add_run("{{ candidate")
    paragraph.add_run("_name }}, welcome!")
    table = template.add_table(rows=1, cols=1)
    table.rows[0].cells[0].text = "Role: {{ position }}"
    buffer = io.BytesIO()
    template.save(buffer)
    OrgStorage(tenant_a.organization.pk).write("templates/offer.docx", buffer.getvalue())
    result = _generate(tenant_a, format="docx", template_path="templates/offer.docx", data=OFFER_DATA,
                       filename="from-template")
    assert result.ok, result.reason
    filled = Document(io.BytesIO(_read(tenant_a, result.result["path"])))
    assert filled.paragraphs[0].text == "Hello Maria López, welcome!"
    assert filled.tables[0].rows[0].cells[0].text == "Role: QA Engineer"


def test_same_name_gets_a_new_file_and_rollback_removes_it(tenant_a):
    """A second document with the same name does not overwrite the first; compensation removes its file."""
    first = _generate(tenant_a, format="pdf", filename="report", content={"title": "One", "paragraphs": []})
    second = _generate(tenant_a, format="pdf", filename="report", content={"title": "Two", "paragraphs": []},
                       context=InvocationContext(group="g"))
    assert first.result["path"] == "documents/report.pdf"
    assert second.result["path"] == "documents/report-2.pdf"
    compensate_group(organization=tenant_a.organization, group="g", actor=tenant_a.member)
    storage = OrgStorage(tenant_a.organization.pk)
    assert storage.exists("documents/report.pdf")
    assert not storage.exists("documents/report-2.pdf")


def test_template_text_is_not_code(tenant_a):
    """Placeholders are substitution only: template syntax in data or content is left as text."""
    result = _generate(tenant_a, format="docx", filename="t",
                       content={"title": "{% debug %}", "paragraphs": ["{{ name }}"]},
                       data={"name": "{{ __class__ }}"})
    assert result.ok
