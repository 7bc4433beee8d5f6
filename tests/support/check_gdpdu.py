"""Reads a GDPdU export as the tax auditors' tools would, with nothing of ours: the
tables index.xml describes (Beschreibungsstandard), each CSV file parsed by its
declared delimiter and encapsulator, every record checked to have the declared columns,
and every file checked against manifest.sha256.

    check_gdpdu.py EXPORT.zip OUT_DIR

Unpacks the ZIP into OUT_DIR and prints {"tables": {url: records}, "files": n} as JSON;
exits 2 with the reason when anything does not hold.
"""

import csv
import hashlib
import json
import os
import sys
import xml.etree.ElementTree as ET
import zipfile


def fail(reason):
    print(reason)
    sys.exit(2)


def main(archive, out):
    with zipfile.ZipFile(archive) as z:
        z.extractall(out)
    root = ET.parse(os.path.join(out, "index.xml")).getroot()
    if root.tag != "DataSet" or root.findtext("Version") is None:
        fail("index.xml is not a GDPdU DataSet")
    tables = {}
    for table in root.iter("Table"):
        url = table.findtext("URL")
        layout = table.find("VariableLength")
        if url is None or layout is None:
            fail(f"table {url} has no URL or no VariableLength")
        if table.find("UTF8") is None:
            fail(f"table {url} does not say it is UTF-8")
        columns = [c.findtext("Name") for c in layout if c.tag in ("VariablePrimaryKey", "VariableColumn")]
        delimiter = layout.findtext("ColumnDelimiter")
        quote = layout.findtext("TextEncapsulator")
        if layout.findtext("RecordDelimiter") != "\r\n":
            fail(f"table {url}: records are not ended by CR LF")
        with open(os.path.join(out, url), encoding="utf-8", newline="") as f:
            records = list(csv.reader(f, delimiter=delimiter, quotechar=quote))
        for n, record in enumerate(records):
            if len(record) != len(columns):
                fail(f"{url} record {n + 1} has {len(record)} fields, index.xml {len(columns)}")
        tables[url] = len(records)
    listed = {}
    for line in open(os.path.join(out, "manifest.sha256"), encoding="utf-8"):
        digest, name = line.rstrip("\n").split("  ", 1)
        listed[name] = digest
    files = sorted(n for n in os.listdir(out) if os.path.isfile(os.path.join(out, n)))
    if sorted(listed) != [n for n in files if n != "manifest.sha256"]:
        fail(f"manifest.sha256 lists {sorted(listed)}, the export holds {files}")
    for name, digest in listed.items():
        if hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest() != digest:
            fail(f"{name} does not match manifest.sha256")
    print(json.dumps({"tables": tables, "files": len(files)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
