"""What the chat shows is safe and readable: sanitized Markdown, highlighted code, file previews, word diffs."""

from __future__ import annotations

import io

from docx import Document

from agents.chat_render import docx_paragraphs, produced_file, render_markdown, side_by_side


def test_markdown_loses_scripts_handlers_styles_and_unsafe_links():
    """Script tags, event handlers, inline styles, images and javascript: links do not survive."""
    html = render_markdown(
        '<script>alert(1)</script><img src=x onerror="alert(2)"><p style="color:red" onclick="x()">hi</p>\n\n'
        "[click](javascript:alert(3)) [ok](https://example.com) [here](/orgs/acme/tasks/1/)"
    )
    assert "<script" not in html
    assert "onerror" not in html
    assert "onclick" not in html
    assert "style=" not in html
    assert "<img" not in html
    assert "javascript:" not in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in html
    assert 'href="/orgs/acme/tasks/1/"' in html
    assert "mailto:" not in render_markdown("message_id: <1795.2@localhost>")


def test_code_blocks_are_highlighted_with_css_classes_only():
    """A fenced block with a language gets Pygments' token classes; nothing but those classes is kept."""
    html = render_markdown('```python\ndef hello():\n    return "<b>hi</b>"\n```')
    assert '<div class="highlight">' in html
    assert '<span class="k">def</span>' in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html
    assert 'class="evil"' not in render_markdown('<span class="evil">x</span>')


def test_a_list_right_after_a_line_is_a_list():
    """The Manager writes "Plan v1: …" then numbered lines: they render as a list, line breaks kept."""
    html = render_markdown("Plan v1: onboard Maria\n1. Write the letter\n2. Send the email\nEstimated: 7 minutes.")
    assert "<ol>" in html
    assert "<li>Write the letter</li>" in html
    assert "<p>Estimated: 7 minutes.</p>" in html  # the line after the list is not part of its last item
    assert render_markdown("first line\nsecond line").count("<br") == 1


def test_docx_text_and_file_kinds():
    """A .docx yields its paragraphs; images are thumbnails; only this site's download links are kept."""
    document = Document()
    document.add_paragraph("Dear Maria Lopez,")
    document.add_paragraph("")
    document.add_paragraph("We are pleased to offer you the position of QA engineer.")
    buffer = io.BytesIO()
    document.save(buffer)
    assert docx_paragraphs(buffer.getvalue()) == ["Dear Maria Lopez,",
                                                  "We are pleased to offer you the position of QA engineer."]
    assert docx_paragraphs(b"not a zip") == []
    image = produced_file(1, {"path": "img/chart.png", "download_url": "/api/v1/orgs/a/files/download/?path=x",
                              "size": 10})
    assert image is not None
    assert image.kind == "image"
    assert image.name == "chart.png"
    assert produced_file(1, {"path": "a.png", "download_url": "https://evil.example/a.png"}) is None
    assert produced_file(1, {"path": "report.pdf", "download_url": "/x"}).kind == "file"
    assert produced_file(1, "not a result") is None


def test_side_by_side_marks_changed_words_and_escapes():
    """Changed lines pair up with the changed words marked; added and removed lines stand alone; HTML is escaped."""
    rows = side_by_side("Dear Maria,\nManager: the hiring manager\n<b>old</b>",
                        "Dear Maria,\nManager: Dana Whitfield\nStart: 1 March")
    kinds = [r.kind for r in rows]
    assert kinds[0] == "equal"
    assert "replace" in kinds
    changed = next(r for r in rows if r.kind == "replace" and "Manager" in r.left)
    assert changed.left == "Manager: <del>the hiring manager</del>"
    assert changed.right == "Manager: <ins>Dana Whitfield</ins>"
    assert all("<b>" not in r.left for r in rows)
    assert any("&lt;b&gt;old&lt;/b&gt;" in r.left for r in rows)
