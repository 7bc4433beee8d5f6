"""Generates a corpus of receipts that vary along every axis the OCR has to survive.

Usage: python receipt_corpus.py --part dev|heldout --count N --out DIR [--variants clean,photo,pdf]

Writes DIR/<n>.<png|jpg|pdf> and DIR/truth.jsonl (one JSON object per file: the file, its
content type, variant, language, layout, font, currency and the true merchant, date and
total). Every receipt is drawn from its own seed, "<part>:<n>", so a part is the same on
every machine and the two parts never share a receipt. Tune the extractor on `dev` only:
`heldout` is for reporting, and acceptance uses sets nobody here has seen.

Axes: fonts (every free family Debian ships that the test script installs), layouts
(amounts right-aligned far from labels, dot leaders, amount before label, item tables,
two-column headers, long receipts, narrow till rolls, wide A4 invoices), wording in six
languages with subtotal/tax/tip/discount/deposit/cash/change/card lines as distractors,
number formats, 18 currencies as CLDR prints them, a dozen date formats, and photo-like
captures (perspective, rotation up to 15 degrees, uneven light and shadow, blur, noise,
low contrast, JPEG down to quality 40, curved paper, cropped margins). PDFs are
two-page invoices with the total on page 2, with a text layer or scanned.
"""

import argparse
import json
import math
import os
import random
import sys
from datetime import date, timedelta

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from draw_receipt import text_pdf  # noqa: E402  (beside this file, not a package)

FONT_DIRS = [
    "/usr/share/fonts/truetype/dejavu/",
    "/usr/share/fonts/truetype/liberation/",
    "/usr/share/fonts/truetype/freefont/",
    "/usr/share/fonts/truetype/noto/",
]
# Monospace and proportional, serif and sans, bold and condensed.
FONTS = [
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerifCondensed.ttf",
    "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "LiberationSerif-Regular.ttf",
    "LiberationMono-Regular.ttf", "LiberationSansNarrow-Regular.ttf", "LiberationMono-Bold.ttf",
    "FreeSans.ttf", "FreeSerif.ttf", "FreeMono.ttf", "FreeMonoBold.ttf", "FreeSansBold.ttf",
    "NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSerif-Regular.ttf", "NotoSansMono-Regular.ttf",
    "NotoSansMono-Bold.ttf",
]

# Per currency: decimals and the ways tills print it ("{}" is the amount). The symbol
# forms that several currencies share ("$", "¥", "kr") are only used where the receipt
# names its country.
CURRENCIES = {
    "EUR": (2, ["€{}", "{} €", "EUR {}", "{} EUR", "{}€"]),
    "USD": (2, ["${}", "$ {}", "USD {}", "{} USD", "US${}"]),
    "GBP": (2, ["£{}", "£ {}", "GBP {}"]),
    "CHF": (2, ["CHF {}", "{} CHF", "Fr. {}", "SFr. {}"]),
    "JPY": (0, ["¥{}", "¥ {}", "JPY {}", "{} JPY", "{}円"]),
    "CAD": (2, ["CA${}", "C${}", "${} CAD", "CAD {}", "$ {}"]),
    "AUD": (2, ["A${}", "AU${}", "AUD {}", "${}"]),
    "NZD": (2, ["NZ${}", "NZD {}", "${}"]),
    "HKD": (2, ["HK${}", "HKD {}", "${}"]),
    "MXN": (2, ["MX${}", "MXN {}", "$ {}"]),
    "BRL": (2, ["R$ {}", "R${}", "BRL {}"]),
    "SEK": (2, ["{} kr", "{} SEK", "SEK {}", "kr {}"]),
    "NOK": (2, ["kr {}", "{} NOK", "NOK {}", "{} kr"]),
    "DKK": (2, ["{} kr.", "DKK {}", "kr. {}"]),
    "PLN": (2, ["{} zł", "{} PLN", "PLN {}"]),
    "CZK": (2, ["{} Kč", "{} CZK", "CZK {}"]),
    "INR": (2, ["₹{}", "Rs. {}", "INR {}"]),
    "KRW": (0, ["₩{}", "KRW {}", "{} 원"]),
}
AMBIGUOUS_SYMBOL = ("$", "¥", "kr")
COUNTRIES = {
    "EUR": [("Berlin", "Deutschland", "de"), ("Paris", "France", "fr"), ("Madrid", "España", "es"),
            ("Roma", "Italia", "it"), ("Amsterdam", "Nederland", "nl"), ("Dublin", "Ireland", "en"),
            ("Wien", "Österreich", "de"), ("Bruxelles", "Belgique", "fr")],
    "USD": [("New York, NY", "USA", "en"), ("Austin, TX", "United States", "en")],
    "GBP": [("London", "United Kingdom", "en"), ("Leeds", "UK", "en")],
    "CHF": [("Zürich", "Schweiz", "de"), ("Genève", "Suisse", "fr"), ("Lugano", "Svizzera", "it")],
    "JPY": [("Tokyo", "Japan", "en")],
    "CAD": [("Toronto, ON", "Canada", "en"), ("Montréal, QC", "Canada", "fr")],
    "AUD": [("Sydney NSW", "Australia", "en")],
    "NZD": [("Auckland", "New Zealand", "en")],
    "HKD": [("Kowloon", "Hong Kong", "en")],
    "MXN": [("Ciudad de México", "México", "es")],
    "BRL": [("São Paulo", "Brasil", "es")],
    "SEK": [("Stockholm", "Sverige", "en")],
    "NOK": [("Oslo", "Norge", "en")],
    "DKK": [("København", "Danmark", "en")],
    "PLN": [("Warszawa", "Polska", "en")],
    "CZK": [("Praha", "Česko", "en")],
    "INR": [("Mumbai", "India", "en")],
    "KRW": [("Seoul", "Korea", "en")],
}

WORDS = {
    "en": dict(total=["TOTAL", "Total", "Amount Due", "Balance Due", "Grand Total", "Total to pay", "AMOUNT"],
               subtotal=["Subtotal", "Sub-total", "Net amount"], tax=["Tax", "Sales Tax", "VAT {}%", "GST {}%"],
               tip=["Tip", "Gratuity"], discount=["Discount", "Member discount"], deposit=["Deposit", "Bottle deposit"],
               cash=["Cash", "Cash tendered"], change=["Change", "Change due"], card=["VISA ****{}", "Mastercard ****{}", "Card payment"],
               date=["Date:", "Date", ""], thanks=["Thank you!", "Thanks for visiting", "Please come again"],
               items=["Latte", "Croissant", "Club sandwich", "Sparkling water", "Pasta", "Caesar salad", "Notebook A5",
                      "Ballpoint pens", "Parking 2h", "Tomato soup", "Green tea", "Sourdough bread", "Espresso", "Bagel",
                      "Printer paper", "USB cable", "Room service", "Breakfast buffet", "Taxi fare", "Bananas 1kg"],
               shops=["{} Coffee", "{} Diner", "{} Books", "{} Market", "The {} Grill", "{} Stationers", "{} Hotel", "{} Pharmacy"],
               names=["Blue Bottle", "Riverside", "Harbor", "Oakwood", "Maple", "Golden Gate", "Kingsway", "Elm Street"]),
    "de": dict(total=["SUMME", "Summe", "Gesamtbetrag", "Zu zahlen", "Gesamt", "Endbetrag", "Total"],
               subtotal=["Zwischensumme", "Nettobetrag"], tax=["MwSt {}%", "USt {}%", "inkl. MwSt {}%"],
               tip=["Trinkgeld"], discount=["Rabatt", "Nachlass"], deposit=["Pfand"],
               cash=["Bar", "Gegeben", "Bar gegeben"], change=["Rückgeld", "Wechselgeld", "Zurück"],
               card=["EC-Karte ****{}", "Girocard", "Kartenzahlung"], date=["Datum:", "Datum", ""],
               thanks=["Vielen Dank!", "Danke für Ihren Einkauf"],
               items=["Kaffee", "Brezel", "Apfelschorle", "Brötchen", "Schnitzel", "Kartoffelsalat", "Kugelschreiber",
                      "Parkschein", "Tageszeitung", "Mineralwasser", "Bier 0,5l", "Laugenstange", "Druckerpapier"],
               shops=["Bäckerei {}", "Gasthaus {}", "Café {}", "{} Apotheke", "Buchhandlung {}", "Hotel {}", "{} Markt"],
               names=["Schmidt", "Müller", "Zur Post", "Am Markt", "Lindenhof", "Sonne", "Krone", "Weber"]),
    "fr": dict(total=["TOTAL TTC", "Total", "Montant dû", "Net à payer", "À payer", "TOTAL"],
               subtotal=["Sous-total", "Total HT"], tax=["TVA {}%", "dont TVA {}%"],
               tip=["Pourboire"], discount=["Remise"], deposit=["Consigne"],
               cash=["Espèces", "Espèces reçues"], change=["Rendu", "Monnaie rendue"],
               card=["CB ****{}", "Carte bancaire", "Paiement CB"], date=["Date :", "Le", ""],
               thanks=["Merci de votre visite", "À bientôt"],
               items=["Café crème", "Croissant", "Baguette", "Eau minérale", "Croque-monsieur", "Salade niçoise",
                      "Stylo", "Ticket parking", "Jus d'orange", "Quiche lorraine", "Pain au chocolat", "Carnet"],
               shops=["Boulangerie {}", "Café {}", "Brasserie {}", "Librairie {}", "Hôtel {}", "Pharmacie {}"],
               names=["du Marché", "de la Gare", "Martin", "Dupont", "Saint-Michel", "Le Central", "des Arts"]),
    "es": dict(total=["TOTAL", "Importe", "Total a pagar", "Importe total", "TOTAL EUROS"],
               subtotal=["Subtotal", "Base imponible"], tax=["IVA {}%", "IVA incl. {}%"],
               tip=["Propina"], discount=["Descuento"], deposit=["Depósito"],
               cash=["Efectivo", "Entregado"], change=["Cambio", "Cambio devuelto"],
               card=["Tarjeta ****{}", "Pago con tarjeta"], date=["Fecha:", "Fecha", ""],
               thanks=["Gracias por su visita", "Vuelva pronto"],
               items=["Café con leche", "Tostada", "Agua mineral", "Bocadillo", "Paella", "Ensalada", "Bolígrafo",
                      "Aparcamiento", "Zumo de naranja", "Tortilla", "Cerveza", "Churros"],
               shops=["Cafetería {}", "Restaurante {}", "Librería {}", "Hotel {}", "Farmacia {}", "Bar {}"],
               names=["El Sol", "La Plaza", "García", "Los Olivos", "San Juan", "Castilla", "Mediterráneo"]),
    "it": dict(total=["TOTALE", "Totale", "Totale complessivo", "Importo", "Da pagare", "TOTALE EURO"],
               subtotal=["Subtotale", "Imponibile"], tax=["IVA {}%", "di cui IVA {}%"],
               tip=["Mancia"], discount=["Sconto"], deposit=["Cauzione"],
               cash=["Contanti", "Contante"], change=["Resto"],
               card=["Carta ****{}", "Bancomat", "Pagamento elettronico"], date=["Data:", "Data", ""],
               thanks=["Grazie e arrivederci", "Grazie"],
               items=["Cappuccino", "Cornetto", "Acqua naturale", "Panino", "Spaghetti", "Insalata", "Penna",
                      "Parcheggio", "Spremuta", "Tiramisù", "Pizza margherita", "Caffè"],
               shops=["Bar {}", "Trattoria {}", "Pizzeria {}", "Libreria {}", "Albergo {}", "Farmacia {}"],
               names=["Roma", "da Mario", "Centrale", "Bella Vista", "del Corso", "Napoli", "La Pergola"]),
    "nl": dict(total=["TOTAAL", "Totaal", "Te betalen", "Totaal bedrag", "Totaalbedrag"],
               subtotal=["Subtotaal", "Totaal excl. BTW"], tax=["BTW {}%", "incl. BTW {}%"],
               tip=["Fooi"], discount=["Korting"], deposit=["Statiegeld"],
               cash=["Contant", "Contant betaald"], change=["Wisselgeld", "Terug"],
               card=["Pin ****{}", "Betaald met pin", "Maestro"], date=["Datum:", "Datum", ""],
               thanks=["Bedankt en tot ziens", "Dank u wel"],
               items=["Koffie", "Appeltaart", "Spa blauw", "Broodje kaas", "Soep van de dag", "Tosti", "Pen",
                      "Parkeren", "Verse jus", "Bitterballen", "Stroopwafel", "Thee"],
               shops=["Bakkerij {}", "Café {}", "Boekhandel {}", "Hotel {}", "Apotheek {}", "Eetcafé {}"],
               names=["De Molen", "Jansen", "Het Hoekje", "de Vries", "Centraal", "De Gouden Leeuw", "Bakker"]),
}
MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
           "settembre", "ottobre", "novembre", "dicembre"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
           "oktober", "november", "december"],
}

# Abbreviated months where the first three letters are not what CLDR prints: French "jui"
# would be June and July alike, Dutch "maa" is no abbreviation at all.
ABBREVIATED = {
    "fr": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
           "nov.", "déc."],
    "nl": ["jan.", "feb.", "mrt.", "apr.", "mei", "jun.", "jul.", "aug.", "sep.", "okt.", "nov.",
           "dec."],
}


def abbreviated(language: str, month: int) -> str:
    """The month's abbreviation with its point ("juil.", "Mar."), as the language prints it."""
    if language in ABBREVIATED:
        return ABBREVIATED[language][month - 1]
    return MONTHS[language][month - 1][:3] + "."


def grouped(digits: str, separator: str) -> str:
    parts = []
    while len(digits) > 3:
        parts.insert(0, digits[-3:])
        digits = digits[:-3]
    parts.insert(0, digits)
    return separator.join(parts)


def number(minor: int, decimals: int, style: str) -> str:
    """An amount in minor units as a locale prints it: en 1,234.56, de 1.234,56,
    fr 1 234,56, ch 1'234.56, or without grouping."""
    negative = minor < 0
    minor = abs(minor)
    whole, fraction = divmod(minor, 10 ** decimals) if decimals else (minor, 0)
    group, point = {"en": (",", "."), "de": (".", ","), "fr": (" ", ","), "ch": ("'", "."),
                    "plain": ("", "."), "plaincomma": ("", ",")}[style]
    text = grouped(str(whole), group)
    if decimals:
        text += point + str(fraction).rjust(decimals, "0")
    return ("-" if negative else "") + text


def date_text(rng: random.Random, day: date, language: str, month_first: bool, currency: str) -> tuple:
    """The date as the receipt prints it, and the format's name."""
    months = MONTHS[language]
    month = months[day.month - 1]
    short = abbreviated(language, day.month)
    formats = [
        ("iso", day.isoformat()),
        ("dotted", f"{day.day:02}.{day.month:02}.{day.year}"),
        ("dotted-short", f"{day.day:02}.{day.month:02}.{day.year % 100:02}"),
        ("dashed", f"{day.day:02}-{day.month:02}-{day.year}" if not month_first
         else f"{day.month:02}-{day.day:02}-{day.year}"),
        ("slashed", f"{day.month:02}/{day.day:02}/{day.year}" if month_first
         else f"{day.day:02}/{day.month:02}/{day.year}"),
        ("slashed-short", f"{day.month}/{day.day}/{day.year % 100:02}" if month_first
         else f"{day.day}/{day.month}/{day.year % 100:02}"),
        ("long", f"{day.day}. {month} {day.year}" if language == "de"
         else f"{day.day} de {month} de {day.year}" if language == "es"
         else f"{month} {day.day}, {day.year}" if language == "en" and month_first
         else f"{day.day} {month} {day.year}"),
        ("abbrev", f"{day.day:02}-{short.rstrip('.').capitalize()}-{day.year % 100:02}"),
        ("abbrev-us", f"{month[:3].capitalize()} {day.day}, {day.year}" if language == "en"
         else f"{day.day} {short} {day.year}"),
        ("weekday", day.strftime("%a ") + (f"{day.month:02}/{day.day:02}/{day.year}" if month_first
                                          else f"{day.day:02}/{day.month:02}/{day.year}")),
        ("iso-slashed", f"{day.year}/{day.month:02}/{day.day:02}"),
        ("compact-time", f"{day.day:02}.{day.month:02}.{day.year} {rng.randint(7, 22):02}:{rng.randint(0, 59):02}"),
    ]
    if currency in ("JPY", "KRW"):
        formats.append(("iso-slashed", f"{day.year}/{day.month:02}/{day.day:02}"))
    return rng.choice(formats)


def money_text(rng, minor, currency, style, form=None) -> str:
    decimals, forms = CURRENCIES[currency]
    text = number(minor, decimals, style)
    return (form or rng.choice(forms)).format(text)


def build(rng: random.Random, variant: str) -> tuple:
    """The receipt's rows and the truth."""
    currency = rng.choice(list(CURRENCIES))
    city, country, country_language = rng.choice(COUNTRIES[currency])
    # Often the country's language, as often any other (tourist tills, chains, hotels).
    language = country_language if rng.random() < 0.5 else rng.choice(list(WORDS))
    words = WORDS[language]
    month_first = currency == "USD" and language == "en"
    decimals, forms = CURRENCIES[currency]
    style = {"en": "en", "de": "de", "fr": "fr", "es": "de", "it": "de", "nl": "de"}[language]
    if currency == "CHF" and rng.random() < 0.6:
        style = "ch"
    if rng.random() < 0.35:
        style = "plain" if style in ("en", "ch") else "plaincomma"
    form = rng.choice(forms)
    symbol_only = any(form.replace("{}", "").strip() == s for s in AMBIGUOUS_SYMBOL) or form == "{} kr."
    merchant = rng.choice(words["shops"]).format(rng.choice(words["names"]))
    layout = rng.choice(["tab", "tab", "leaders", "inline", "amount-first", "table", "two-column"])
    width_kind = "wide" if variant == "pdf" else rng.choice(["narrow", "normal", "normal", "wide"])
    long_receipt = rng.random() < 0.15 or variant == "pdf"
    day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 1000))
    date_format, printed_date = date_text(rng, day, language, month_first, currency)

    unit = 10 ** decimals
    scale = {"JPY": 100, "KRW": 1000, "INR": 50, "CZK": 20, "SEK": 10, "NOK": 10, "DKK": 7,
             "MXN": 18, "PLN": 4, "HKD": 8, "BRL": 5}.get(currency, 1)
    items = []
    for _ in range(rng.randint(12, 30) if long_receipt else rng.randint(1, 6)):
        quantity = rng.choice([1, 1, 1, 2, 3])
        price = rng.randint(80, 4000) * scale * unit // 100
        if width_kind == "wide" and rng.random() < 0.3:
            price *= rng.randint(5, 40)
        items.append((rng.choice(words["items"]), quantity, price))
    subtotal = sum(q * p for _, q, p in items)
    rate = rng.choice([5, 7, 10, 19, 20, 21, 22])
    tax_added = currency in ("USD", "CAD") or rng.random() < 0.2
    tax = round(subtotal * rate / 100) if tax_added else round(subtotal * rate / (100 + rate))
    discount = round(subtotal * rng.choice([5, 10]) / 100) if rng.random() < 0.2 else 0
    tip = round(subtotal * rng.choice([10, 15, 18]) / 100) if rng.random() < 0.15 else 0
    deposit = rng.choice([25, 50]) * unit // 100 * max(scale // 10, 1) if rng.random() < 0.1 else 0
    total = subtotal - discount + tip + deposit + (tax if tax_added else 0)

    def amount(minor, with_currency=False):
        return money_text(rng, minor, currency, style, form) if with_currency else number(minor, decimals, style)

    rows = []
    rows.append(("center", merchant))
    rows.append(("center", f"{rng.randint(1, 200)} {rng.choice(['Main St', 'Hauptstraße', 'rue de la Paix', 'Calle Mayor', 'Via Roma', 'Dorpsstraat'])}"))
    names_country = symbol_only or rng.random() < 0.6
    rows.append(("center", f"{city}, {country}" if names_country else city))
    if rng.random() < 0.4:
        rows.append(("center", f"Tel. +{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100000, 999999)}"))
    label = rng.choice(words["date"])
    time_text = f"{rng.randint(7, 22):02}:{rng.randint(0, 59):02}"
    if layout == "two-column":
        rows.append(("pair", f"{label} {printed_date}".strip(), time_text))
        rows.append(("pair", f"#{rng.randint(1000, 99999)}", f"{rng.choice(['Kasse', 'Till', 'Caisse', 'Caja', 'Cassa'])} {rng.randint(1, 9)}"))
    else:
        rows.append(("left", f"{label} {printed_date}  {time_text}".strip()))
    if width_kind == "wide":
        rows.append(("left", rng.choice(["INVOICE", "RECHNUNG", "FACTURE", "FACTURA", "FATTURA", "FACTUUR"]) + f" {rng.randint(10000, 99999)}"))
    rows.append(("rule", ""))
    if layout == "table":
        rows.append(("table", ["Qty", "Item", "Price", "Amount"]))
    for name, quantity, price in items:
        if layout == "table":
            rows.append(("table", [str(quantity), name, amount(price), amount(quantity * price)]))
        elif quantity > 1:
            rows.append(("left", f"{quantity} x {amount(price)}"))
            rows.append(("pair", name, amount(quantity * price)))
        else:
            rows.append(("pair", name, amount(price)))
    rows.append(("rule", ""))
    if rng.random() < 0.7 or tax_added or discount or tip:
        rows.append(("pair", rng.choice(words["subtotal"]), amount(subtotal)))
    if discount:
        rows.append(("pair", rng.choice(words["discount"]), amount(-discount)))
    if deposit:
        rows.append(("pair", rng.choice(words["deposit"]), amount(deposit)))
    if tax_added:
        rows.append(("pair", rng.choice(words["tax"]).format(rate), amount(tax)))
    if tip:
        rows.append(("pair", rng.choice(words["tip"]), amount(tip)))
    currency_on_total = rng.random() < 0.8 or not names_country
    # "TOTAL EUROS" is printed by tills in euros only.
    total_label = rng.choice([w for w in words["total"] if currency == "EUR" or "EURO" not in w])
    rows.append(("total", total_label, amount(total, currency_on_total)))
    if not currency_on_total and rng.random() < 0.5:
        rows.append(("left", f"{currency}"))
    if not tax_added and rng.random() < 0.7:
        rows.append(("pair", rng.choice(words["tax"]).format(rate), amount(tax)))
    payment = rng.random()
    if payment < 0.35:
        cash = (total // (10 * unit * scale) + 1) * 10 * unit * scale
        rows.append(("pair", rng.choice(words["cash"]), amount(cash)))
        rows.append(("pair", rng.choice(words["change"]), amount(cash - total)))
    elif payment < 0.75:
        rows.append(("pair", rng.choice(words["card"]).format(rng.randint(1000, 9999)), amount(total)))
    rows.append(("center", rng.choice(words["thanks"])))

    truth = {
        "merchant": merchant,
        "date": day.isoformat(),
        "total": number(total, decimals, "plain"),
        "currency": currency,
        "language": language,
        "layout": layout,
        "width": width_kind,
        "date_format": date_format,
        "currency_form": form,
    }
    return rows, layout, width_kind, truth


def font_path(name: str) -> str:
    for folder in FONT_DIRS:
        if os.path.exists(folder + name):
            return folder + name
    raise SystemExit(f"font {name} is not installed (scripts/lib.sh install_ocr installs them)")


def render(rows, layout, width_kind, font_name, size, leaders) -> Image.Image:
    font = ImageFont.truetype(font_path(font_name), size)
    bold = ImageFont.truetype(font_path(font_name), int(size * 1.15))
    ascent, descent = font.getmetrics()
    line_height = int((ascent + descent) * 1.35)
    columns = {"narrow": 30, "normal": 42, "wide": 78}[width_kind]
    average = font.getlength("abcdefghijklmnopqrstuvwxyz0123456789") / 36
    width = int(columns * average) + 80
    for kind, *parts in rows:
        text = "  ".join(parts[0]) if kind == "table" else "   ".join(parts)
        width = max(width, int(font.getlength(text)) + 100)
    height = line_height * (len(rows) + 1) + 80
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    left, right = 40, width - 40
    y = 40
    for kind, *parts in rows:
        if kind == "center":
            draw.text(((width - font.getlength(parts[0])) / 2, y), parts[0], font=font, fill=0)
        elif kind == "left":
            draw.text((left, y), parts[0], font=font, fill=0)
        elif kind == "rule":
            draw.text((left, y), "-" * int((right - left) / max(font.getlength("-"), 1)), font=font, fill=0)
        elif kind == "table":
            cells = parts[0]
            stops = [left, left + (right - left) * 0.12, left + (right - left) * 0.68, right]
            draw.text((stops[0], y), cells[0], font=font, fill=0)
            draw.text((stops[1], y), cells[1], font=font, fill=0)
            draw.text((stops[2] - font.getlength(cells[2]), y), cells[2], font=font, fill=0)
            draw.text((stops[3] - font.getlength(cells[3]), y), cells[3], font=font, fill=0)
        else:
            label, value = parts
            face = bold if kind == "total" else font
            if layout == "amount-first" and kind != "pair":
                draw.text((left, y), f"{value}  {label}", font=face, fill=0)
            elif layout == "inline":
                draw.text((left, y), f"{label}  {value}", font=face, fill=0)
            elif layout == "leaders" or leaders:
                value_x = right - face.getlength(value)
                label_end = left + face.getlength(label + " ")
                dots = "." * max(int((value_x - label_end - 10) / max(face.getlength("."), 1)), 2)
                draw.text((left, y), f"{label} {dots}", font=face, fill=0)
                draw.text((value_x, y), value, font=face, fill=0)
            else:
                draw.text((left, y), label, font=face, fill=0)
                draw.text((right - face.getlength(value), y), value, font=face, fill=0)
        y += line_height
    return image


def solve(matrix, vector):
    """Gaussian elimination for the eight perspective coefficients."""
    n = len(vector)
    rows = [list(matrix[i]) + [vector[i]] for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(n):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def perspective(image, rng, strength):
    """Looks at the paper from an angle: each corner moved inwards a little."""
    w, h = image.size
    source = [(0, 0), (w, 0), (w, h), (0, h)]
    shifted = [(x + rng.uniform(-strength, strength) * w * (1 if x == 0 else -1),
                y + rng.uniform(-strength, strength) * h * (1 if y == 0 else -1) * 0.5) for x, y in source]
    # PIL maps output pixels to input pixels: solve for shifted (output) → source (input).
    matrix, vector = [], []
    for (x, y), (u, v) in zip(shifted, source):
        matrix.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        matrix.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        vector += [u, v]
    return image.transform((w, h), Image.PERSPECTIVE, solve(matrix, vector), Image.BICUBIC, fillcolor=255)


def curve(image, rng):
    """Paper that does not lie flat: strips shifted up and down along a wave."""
    w, h = image.size
    amplitude = rng.uniform(3, 12)
    phase = rng.uniform(0, math.pi)
    strips = 24
    mesh = []
    for i in range(strips):
        x0, x1 = w * i // strips, w * (i + 1) // strips
        d0 = amplitude * math.sin(phase + 2 * math.pi * x0 / w)
        d1 = amplitude * math.sin(phase + 2 * math.pi * x1 / w)
        mesh.append(((x0, 0, x1, h), (x0, d0, x0, h + d0, x1, h + d1, x1, d1)))
    return image.transform((w, h), Image.MESH, mesh, Image.BICUBIC, fillcolor=255)


def noise(rng: random.Random, size: tuple, sigma: float) -> Image.Image:
    """Grey noise around 128 with about this spread, drawn from the receipt's own generator.
    PIL's effect_noise draws from the process's, which made a receipt's image depend on
    how many receipts the run had made before it."""
    count = size[0] * size[1]
    # The mean of two uniform draws: a triangle-shaped spread, 255 / sqrt(24) wide.
    mean = ImageChops.add(
        Image.frombytes("L", size, rng.randbytes(count)),
        Image.frombytes("L", size, rng.randbytes(count)),
        scale=2,
    )
    stretch = sigma / (255 / math.sqrt(24))
    return mean.point(lambda v: max(0, min(255, round(128 + (v - 127.5) * stretch))))


def photograph(image: Image.Image, rng: random.Random, spec: dict) -> Image.Image:
    if rng.random() < 0.5:
        image = curve(image, rng)
    # On a table: the paper on a darker background, seen at an angle, turned.
    margin = int(max(image.size) * rng.uniform(0.04, 0.12))
    background = Image.new("L", (image.width + 2 * margin, image.height + 2 * margin), rng.randint(40, 150))
    background = Image.blend(background, noise(rng, background.size, 30).point(lambda v: v // 2), 0.2)
    background.paste(image, (margin, margin))
    image = background
    if rng.random() < 0.7:
        image = perspective(image, rng, rng.uniform(0.01, 0.06))
    angle = rng.uniform(-15, 15) if rng.random() < 0.6 else rng.uniform(-4, 4)
    spec["rotate"] = round(angle, 1)
    image = image.rotate(angle, expand=True, fillcolor=rng.randint(40, 150), resample=Image.BICUBIC)
    # Uneven light: a gradient across the page, and sometimes a hand's shadow.
    gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize(image.size)
    low = rng.randint(120, 230)
    light = gradient.point(lambda v: low + (255 - low) * v // 255)
    image = ImageChops.multiply(image, light)
    if rng.random() < 0.4:
        shadow = Image.new("L", image.size, 255)
        draw = ImageDraw.Draw(shadow)
        w, h = image.size
        corner = [(rng.uniform(0, w), 0), (w, 0), (w, rng.uniform(0, h))]
        draw.polygon(corner + [(rng.uniform(0, w), rng.uniform(0, h))], fill=rng.randint(110, 190))
        image = ImageChops.multiply(image, shadow.filter(ImageFilter.GaussianBlur(25)))
    # Low contrast: faded thermal print.
    if rng.random() < 0.5:
        floor = rng.randint(30, 110)
        image = image.point(lambda v: floor + v * (255 - floor) // 255)
    blur = rng.uniform(0.3, 1.6)
    image = image.filter(ImageFilter.GaussianBlur(blur))
    grain = noise(rng, image.size, rng.uniform(8, 30))
    image = ImageChops.add(image, grain.point(lambda v: v // 6), 1, -20)
    # Scaled as a phone delivers it.
    factor = rng.uniform(0.6, 1.3)
    image = image.resize((int(image.width * factor), int(image.height * factor)), Image.BILINEAR)
    # Cropped margins: the frame cuts into the background, not the print.
    crop = [int(rng.uniform(0, 0.8) * margin * factor) for _ in range(4)]
    image = image.crop((crop[0], crop[1], image.width - crop[2], image.height - crop[3]))
    spec.update(blur=round(blur, 2), scale=round(factor, 2))
    return image


def plain_lines(rows, columns: int) -> list:
    lines = []
    for kind, *parts in rows:
        if kind == "table":
            lines.append("  ".join(parts[0]))
        elif kind in ("pair", "total"):
            lines.append(parts[0] + " " * max(columns - len(parts[0]) - len(parts[1]), 2) + parts[1])
        elif kind == "rule":
            lines.append("-" * columns)
        else:
            lines.append(parts[0])
    return lines


def generate(part: str, index: int, variant: str, out: str, languages=None) -> dict | None:
    rng = random.Random(f"{part}:{variant}:{index}")
    rows, layout, width_kind, truth = build(rng, variant)
    # Every receipt has its own seed: leaving out the other languages draws the same
    # receipts of these, sooner.
    if languages and truth["language"] not in languages:
        return None
    font = rng.choice(FONTS)
    size = rng.randint(18, 32) if variant != "photo" else rng.randint(22, 34)
    spec = {"font": font, "size": size}
    name = f"{variant}-{index:04}"
    if variant == "pdf":
        # An invoice split over two pages, the total on the second.
        split = max(len(rows) - 8, 4)
        pages = [rows[:split], rows[split:]]
        if rng.random() < 0.5:
            data = text_pdf([plain_lines(p, 70) for p in pages], 10, (595, 842))
            spec["pdf"] = "text"
        else:
            images = [render(p, layout, width_kind, font, size, False).convert("RGB") for p in pages]
            path = os.path.join(out, name + ".pdf")
            images[0].save(path, "PDF", save_all=True, append_images=images[1:], resolution=150)
            data = None
            spec["pdf"] = "scanned"
        path = os.path.join(out, name + ".pdf")
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        content_type = "application/pdf"
    else:
        image = render(rows, layout, width_kind, font, size, rng.random() < 0.1)
        if variant == "photo":
            image = photograph(image, rng, spec)
            quality = rng.randint(40, 90)
            spec["jpeg_quality"] = quality
            path = os.path.join(out, name + ".jpg")
            image.save(path, "JPEG", quality=quality)
            content_type = "image/jpeg"
        else:
            path = os.path.join(out, name + ".png")
            image.save(path, "PNG")
            content_type = "image/png"
    return dict(truth, file=os.path.basename(path), content_type=content_type, variant=variant, **spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["dev", "heldout"], required=True)
    parser.add_argument("--count", type=int, default=100, help="receipts per variant")
    parser.add_argument("--out", required=True)
    parser.add_argument("--variants", default="clean,photo,pdf")
    parser.add_argument("--first", type=int, default=0, help="index of the first receipt")
    parser.add_argument("--languages", help="comma-separated: only receipts in these languages")
    args = parser.parse_args()
    languages = set(args.languages.split(",")) if args.languages else None
    if languages and not languages <= set(WORDS):
        sys.exit(f"unknown languages {', '.join(sorted(languages - set(WORDS)))}: {', '.join(WORDS)}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "truth.jsonl"), "w", encoding="utf-8") as truth:
        kept = 0
        for variant in args.variants.split(","):
            for index in range(args.first, args.first + args.count):
                drawn = generate(args.part, index, variant, args.out, languages)
                if drawn is not None:
                    truth.write(json.dumps(drawn, ensure_ascii=False) + "\n")
                    kept += 1
    print(f"{args.out}: {kept} receipts drawn, indices {args.first}… ({args.count}) per variant ({args.part})", file=sys.stderr)


if __name__ == "__main__":
    main()
