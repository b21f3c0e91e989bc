"""Text in any charset and script, and HTML with its inline images, become fax pages."""

from __future__ import annotations

import socket
import subprocess

from renderers import RenderOptions, SourceDocument, render_fax
from renderers.text import decode_text
from tests.renderers import documents
from tests.renderers.conftest import ink_box, ocr

SCRIPTS = {
    "Latin": "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich",
    "Greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία",
    "Cyrillic": "Съешь же ещё этих мягких французских булок",
    "Arabic": "نص حكيم له سر قاطع وذو شأن عظيم",
    "Hebrew": "דג סקרן שט בים מאוכזב ולפתע מצא חברה",
    "CJK": "我能吞下玻璃而不伤身体。私はガラスを食べられます。",
    "Hangul": "다람쥐 헌 쳇바퀴에 타고파",
}


def _render(tmp_path, *docs, **options):
    out = tmp_path / "fax.tif"
    return render_fax(list(docs), out, RenderOptions(**options)), out


def test_text_in_every_promised_script_renders_with_installed_fonts(tmp_path, check_fax):
    text = "\n".join(f"{name}: {line}" for name, line in SCRIPTS.items())
    result, out = _render(tmp_path, SourceDocument("scripts.txt", text.encode("utf-8"), "text/plain; charset=utf-8"))
    [page] = check_fax(out, pages=1)
    assert ink_box(page) is not None and result.page_count == 1
    # Without a font for a script Pango draws empty boxes; fontconfig must know a
    # font holding every character of every line (set-up installs them).
    for name, line in SCRIPTS.items():
        wanted = " ".join(f"{ord(char):x}" for char in set(line) if not char.isspace())
        fonts = subprocess.run(["fc-list", f":charset={wanted}", "family"],
                               capture_output=True, text=True, check=True).stdout
        assert fonts.strip(), f"no installed font covers the {name} sample"


def test_legacy_charsets_are_decoded_declared_or_not():
    assert decode_text(SCRIPTS["Cyrillic"].encode("cp1251")) == SCRIPTS["Cyrillic"]
    assert decode_text(SCRIPTS["Greek"].encode("iso-8859-7"), "iso-8859-7") == SCRIPTS["Greek"]
    assert decode_text("Grüße".encode("utf-16")) == "Grüße"


def test_a_form_feed_starts_a_new_page(tmp_path, check_fax):
    _, out = _render(tmp_path, SourceDocument("two.txt", b"first page\n\x0csecond page\n"))
    check_fax(out, pages=2)


def test_long_lines_wrap_and_legacy_charsets_are_decoded(tmp_path, check_fax):
    line = ("ABCDEFGHIJ " * 40).encode()
    cyrillic = SCRIPTS["Cyrillic"].encode("cp1251")  # no charset declared: guessed
    japanese = "私はガラスを食べられます。".encode("shift_jis")
    _, out = _render(
        tmp_path,
        SourceDocument("wide.txt", line + b"\n\tTabbed\n"),
        SourceDocument("ru.txt", cyrillic),
        SourceDocument("ja.txt", japanese, "text/plain; charset=shift_jis"))
    pages = check_fax(out, pages=3)
    _, _, right, _ = ink_box(pages[0])
    assert right < 1728  # wrapped inside the page, not cut off at the edge


def test_text_body_is_legible_to_ocr(tmp_path, check_fax):
    words = " ".join(documents.WORDS)
    _, out = _render(tmp_path, SourceDocument("", f"{words}\n{words.lower()}\n".encode()))
    [page] = check_fax(out, pages=1)
    text = ocr(page, tmp_path).upper()
    for word in documents.WORDS:
        assert word in text


def test_html_with_css_and_an_inline_cid_image_renders_it_in_place(tmp_path, check_fax):
    picture = documents.image_bytes(documents.grey_card(0, (400, 300)), "PNG")
    html = (b"<html><head><style>h1 { font-size: 30pt } .box { border: 3mm solid black; "
            b"padding: 5mm }</style></head><body><h1>Order</h1><div class='box'>"
            b"<img src='cid:Chart-1@example.com'></div></body></html>")
    result, out = _render(tmp_path,
                          SourceDocument("", html, "text/html; charset=utf-8"),
                          SourceDocument("chart.png", picture, "image/png",
                                         content_id="chart-1@example.com", inline=True))
    [page] = check_fax(out, pages=1)
    assert result.pages_per_document == (("", 1),)
    assert result.skipped == (("chart.png", "shown inside the HTML message"),)
    # The 400x300 black image is there: a solid black run inside the bordered box.
    _, top, _, _ = ink_box(page)
    rows = [page.crop((0, y, 1728, y + 1)).convert("L").tobytes().count(0) for y in range(top, top + 900, 10)]
    assert max(rows) > 500


def test_html_never_fetches_anything_from_the_network(tmp_path, check_fax):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        html = (f"<html><head><link rel=stylesheet href='http://127.0.0.1:{port}/s.css'></head><body>"
                f"<img src='http://127.0.0.1:{port}/track.png'>"
                f"<img src='file:///etc/passwd'><p>Hello</p></body></html>").encode()
        _, out = _render(tmp_path, SourceDocument("page.html", html))
        check_fax(out, pages=1)
        try:
            listener.accept()
            connected = True
        except TimeoutError:
            connected = False
    assert not connected
