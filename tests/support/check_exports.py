"""Reads the product's accounting exports as the systems that import them would.

    check_exports.py csv FILE     -> {"header": [...], "rows": [[...], ...]}
    check_exports.py datev FILE   -> {"problems": [...], "header": {...}, "bookings": [...]}

CSV is read with Python's csv module (RFC 4180, UTF-8). The DATEV file is checked
against DATEV's published description of the DATEV-Format (EXTF, header version 700,
category 21 "Buchungsstapel", format version 13), written here from that description
and not from the product: Windows-1252, CRLF, semicolons, a header line of 31 fields in
their order, the line of column names, 125 fields per booking.
"""

import csv
import io
import json
import re
import sys
from datetime import date

# The 31 fields of the header line, in order: (name, pattern of the value as written,
# quotes included). Empty means "not filled".
HEADER = [
    ("DATEV-Format-KZ", r'"(EXTF|DTVF)"'),
    ("Versionsnummer", r"700"),
    ("Formatkategorie", r"21"),
    ("Formatname", r'"Buchungsstapel"'),
    ("Formatversion", r"13"),
    ("Erzeugt am", r"\d{17}"),
    ("Importiert", r""),
    ("Herkunft", r'"[A-Z0-9]{2}"'),
    ("Exportiert von", r'"[^"]{0,25}"'),
    ("Importiert von", r""),
    ("Beraternummer", r"\d{4,7}"),
    ("Mandantennummer", r"\d{1,5}"),
    ("WJ-Beginn", r"\d{8}"),
    ("Sachkontenlänge", r"[4-8]"),
    ("Datum vom", r"\d{8}"),
    ("Datum bis", r"\d{8}"),
    ("Bezeichnung", r'("[^"]{0,30}")?'),
    ("Diktatkürzel", r'("[^"]{0,2}")?'),
    ("Buchungstyp", r"[12]"),
    ("Rechnungslegungszweck", r"(\d{1,2})?"),
    ("Festschreibung", r"[01]?"),
    ("WKZ", r'"[A-Z]{3}"'),
    ("reserviert 23", r""),
    ("Derivatskennzeichen", r'("[^"]*")?'),
    ("reserviert 25", r""),
    ("reserviert 26", r""),
    ("SKR", r'("\d{2}")?'),
    ("Branchenlösungs-ID", r"(\d+)?"),
    ("reserviert 29", r""),
    ("reserviert 30", r""),
    ("Anwendungsinformation", r'("[^"]{0,16}")?'),
]
COLUMNS = 125


def raw_fields(line):
    """Splits a line at the semicolons outside quotes, keeping each field as written."""
    fields, current, quoted = [], "", False
    for c in line:
        if c == '"':
            quoted = not quoted
        if c == ";" and not quoted:
            fields.append(current)
            current = ""
        else:
            current += c
    fields.append(current)
    return fields


def ymd(text):
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def check_datev(data):
    problems = []
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as e:
        return {"problems": [f"not Windows-1252: {e}"]}
    if "\n" in text.replace("\r\n", ""):
        problems.append("a line does not end in CRLF")
    lines = text.split("\r\n")
    if lines[-1] != "":
        problems.append("the file does not end with CRLF")
    lines = lines[:-1]
    if len(lines) < 2:
        return {"problems": problems + ["no header and column lines"]}
    header = raw_fields(lines[0])
    if len(header) != len(HEADER):
        problems.append(f"the header has {len(header)} fields, not {len(HEADER)}")
    values = {}
    for (name, pattern), value in zip(HEADER, header):
        if not re.fullmatch(pattern, value):
            problems.append(f"header field {name!r} is {value!r}")
        values[name] = value.strip('"')
    names = next(csv.reader([lines[1]], delimiter=";", quotechar='"'))
    if len(names) != COLUMNS:
        problems.append(f"{len(names)} column names, not {COLUMNS}")
    if names[:14] != [
        "Umsatz (ohne Soll/Haben-Kz)", "Soll/Haben-Kennzeichen", "WKZ Umsatz", "Kurs",
        "Basis-Umsatz", "WKZ Basis-Umsatz", "Konto", "Gegenkonto (ohne BU-Schlüssel)",
        "BU-Schlüssel", "Belegdatum", "Belegfeld 1", "Belegfeld 2", "Skonto", "Buchungstext",
    ]:
        problems.append(f"the first column names are {names[:14]}")
    if names[113:115] != ["Festschreibung", "Leistungsdatum"]:
        problems.append(f"columns 114 and 115 are {names[113:115]}")
    length = int(values.get("Sachkontenlänge", "4") or 4)
    start, end = ymd(values["Datum vom"]), ymd(values["Datum bis"])
    fiscal = ymd(values["WJ-Beginn"])
    if not (fiscal <= start <= end):
        problems.append(f"the period {start}..{end} does not begin in the fiscal year {fiscal}")
    bookings = []
    for number, row in enumerate(csv.reader(lines[2:], delimiter=";", quotechar='"'), start=3):
        if len(row) != COLUMNS:
            problems.append(f"line {number}: {len(row)} fields")
            continue
        amount, side, currency, konto, gegenkonto = row[0], row[1], row[2], row[6], row[7]
        if not re.fullmatch(r"\d{1,10},\d{2}", amount):
            problems.append(f"line {number}: Umsatz {amount!r}")
        if side not in ("S", "H"):
            problems.append(f"line {number}: Soll/Haben {side!r}")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            problems.append(f"line {number}: WKZ {currency!r}")
        if not re.fullmatch(rf"\d{{{length}}}", konto):
            problems.append(f"line {number}: Konto {konto!r}")
        if not re.fullmatch(rf"\d{{{length},{length + 1}}}", gegenkonto):
            problems.append(f"line {number}: Gegenkonto {gegenkonto!r}")
        if not re.fullmatch(r"\d{4}", row[9]):
            problems.append(f"line {number}: Belegdatum {row[9]!r}")
        elif not any(
            start <= date(year, int(row[9][2:]), int(row[9][:2])) <= end
            for year in {start.year, end.year}
        ):
            problems.append(f"line {number}: Belegdatum {row[9]} outside {start}..{end}")
        if not re.fullmatch(r"[A-Za-z0-9$&%*+\-/]{0,36}", row[10]):
            problems.append(f"line {number}: Belegfeld 1 {row[10]!r}")
        if len(row[13]) > 60:
            problems.append(f"line {number}: Buchungstext longer than 60")
        if row[114] and not re.fullmatch(r"\d{8}", row[114]):
            problems.append(f"line {number}: Leistungsdatum {row[114]!r}")
        bookings.append({
            "amount": amount, "side": side, "currency": currency, "account": konto,
            "counter_account": gegenkonto, "day": row[9], "reference": row[10],
            "text": row[13], "info": dict(zip(row[20:36:2], row[21:36:2])),
            "service_date": row[114],
        })
    return {"problems": problems, "header": values, "bookings": bookings}


def main():
    kind, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        data = f.read()
    if kind == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        print(json.dumps({"header": rows[0], "rows": rows[1:]}))
    else:
        print(json.dumps(check_datev(data)))


if __name__ == "__main__":
    main()
