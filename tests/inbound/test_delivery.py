"""A fax called in to a customer's number ends as a mail in their inbox: the PDF of
exactly the received pages, the facts of the call, and the footer their plan calls
for (R-MAIL-1, R-MAIL-3, R-STORE-1, R-USE-1)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from pypdf import PdfReader

from tests.faxline.conftest import same_pages
from tests.inbound.support import CALLER, STATION, Running, customer, execute

NUMBER = "+15550300001"
_REVERSED_BITS = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def attachment(message, maintype: str, subtype: str) -> bytes:
    for part in message.iter_attachments():
        if part.get_content_type() == f"{maintype}/{subtype}":
            return part.get_content()
    raise AssertionError(f"no {maintype}/{subtype} attachment")


def tiff_strips(path: Path) -> list[bytes]:
    """The coded bytes of each page (one strip per page) as stored in the TIFF, in PDF bit order."""
    strips = []
    data = path.read_bytes()
    with Image.open(path) as tiff:
        for index in range(tiff.n_frames):
            tiff.seek(index)
            offsets, counts = tiff.tag_v2[273], tiff.tag_v2[279]
            strip = b"".join(data[o:o + c] for o, c in zip(offsets, counts, strict=True))
            if tiff.tag_v2.get(266, 1) == 2:  # FillOrder LSB first (spandsp's): PDF wants MSB first
                strip = strip.translate(_REVERSED_BITS)
            strips.append(strip)
    return strips


def test_received_fax_is_mailed_as_a_pdf_of_the_same_pages(running: Running, three_pages: Path) -> None:
    account = customer(running.site, "alice@example.com", NUMBER, plan="free", time_zone="Europe/Copenhagen")
    result = running.fax_to(NUMBER, three_pages)
    assert result.outcome == "completed"

    [mail] = running.wait_for_mail("alice@example.com")
    assert mail["Subject"] == f"Fax from {CALLER}, 3 pages"
    text = mail.get_body(("plain",)).get_content()
    for fact in (CALLER, STATION, NUMBER, "Pages:", "Line time:", "CET"):
        assert fact in text, fact
    assert "<table>" in mail.get_body(("html",)).get_content()

    [row] = running.fax_rows()
    assert row["state"] == "delivered" and row["account_id"] == account and row["pages"] == 3
    stored = Path(row["tiff_path"])
    assert same_pages(three_pages, stored), "the stored fax is not what was sent"

    pdf = PdfReader(io.BytesIO(attachment(mail, "application", "pdf")))
    assert len(pdf.pages) == 3
    strips = tiff_strips(stored)
    for page, strip in zip(pdf.pages, strips, strict=True):
        [image] = [x.get_object() for x in page["/Resources"]["/XObject"].values()]
        filters = image["/Filter"]
        assert (list(filters) if not isinstance(filters, str) else [filters]) == ["/CCITTFaxDecode"]
        params = image["/DecodeParms"]
        params = params[0] if isinstance(params, list) else params
        assert params["/K"] == -1  # G4, as received: img2pdf did not re-encode it
        assert image["/Width"] == 1728
        assert image._data == strip, "the page was re-encoded"


def test_free_account_gets_the_promotional_footer_and_one_click_opt_out(running: Running, one_page: Path) -> None:
    customer(running.site, "fred@example.com", NUMBER, plan="free")
    running.fax_to(NUMBER, one_page)
    [mail] = running.wait_for_mail("fred@example.com")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto, https = [v.strip(" <>") for v in mail["List-Unsubscribe"].split(",")]
    [token] = [r["token"] for r in running.site.query("SELECT token FROM mail_tokens WHERE purpose = 'unsubscribe'")]
    assert mailto == f"mailto:unsubscribe+{token}@fax.test"
    assert https == f"{running.http_base}/u/{token}"
    text = mail.get_body(("plain",)).get_content()
    assert "News from faxbridge" in text and https in text
    assert "1 Example Street" in text
    assert https in mail.get_body(("html",)).get_content()
    # VERP: the envelope sender names the address (Maildir's Return-Path line).
    [bounce] = [r["token"] for r in running.site.query("SELECT token FROM mail_tokens WHERE purpose = 'bounce'")]
    assert mail["Return-Path"] == f"<bounces+{bounce}@fax.test>"


def test_opted_out_paying_account_gets_no_promotion_but_the_postal_address(running: Running, one_page: Path) -> None:
    customer(running.site, "paula@example.com", NUMBER, plan="plus", promo_opt_in=False)
    running.fax_to(NUMBER, one_page)
    [mail] = running.wait_for_mail("paula@example.com")
    assert "List-Unsubscribe" not in mail and "List-Unsubscribe-Post" not in mail
    text = mail.get_body(("plain",)).get_content()
    assert "News from" not in text and "Unsubscribe" not in text
    assert "1 Example Street" in text


def test_paying_account_that_did_not_opt_out_gets_the_promotion(running: Running, one_page: Path) -> None:
    customer(running.site, "pete@example.com", NUMBER, plan="pro")
    running.fax_to(NUMBER, one_page)
    [mail] = running.wait_for_mail("pete@example.com")
    assert "List-Unsubscribe" in mail


def test_every_delivery_address_gets_its_own_mail_and_tiff_on_request(running: Running, one_page: Path) -> None:
    account = customer(running.site, "owner@example.com", NUMBER, plan="plus", inbound_format="tiff")
    execute(running.site, "INSERT INTO account_addresses (account_id, address, kind) VALUES (?, ?, 'delivery')",
            account, "office@example.com")
    running.fax_to(NUMBER, one_page)
    for address in ("owner@example.com", "office@example.com"):
        [mail] = running.wait_for_mail(address)
        assert mail["To"] == address
        tiff = attachment(mail, "image", "tiff")
        assert same_pages(one_page, _written(running.site.root / f"{address}.tif", tiff))
    returns = {m["Return-Path"] for a in ("owner@example.com", "office@example.com") for m in running.mails(a)}
    assert len(returns) == 2, "each address has its own bounce token"


def test_inbound_pages_are_charged_once_as_usage(running: Running, three_pages: Path) -> None:
    account = customer(running.site, "tom@example.com", NUMBER, plan="plus")
    execute(running.site, "UPDATE fax_numbers SET kind = 'toll-free' WHERE e164 = ?", NUMBER)
    running.fax_to(NUMBER, three_pages)
    running.wait_for_mail("tom@example.com")
    [usage] = running.site.query("SELECT * FROM usage_records WHERE account_id = ?", account)
    [row] = running.fax_rows()
    assert usage["source_key"] == f"inbound:{row['id']}" and usage["direction"] == "in"
    assert usage["units"] >= 3 and usage["number_kind"] == "toll-free"
    assert row["charged_minor"] == usage["charged_minor"] > 0


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
