"""A second receipt corpus, drawn unlike the first: receipts the extractor was not written for.

Usage: python receipt_strangers.py --part dev|heldout --count N --out DIR [--variants clean,photo]
       [--first I]

Writes the same DIR/truth.jsonl as receipt_corpus.py, so `ocrbench --corpus strangers` reads
it. `receipt_corpus.py` and the extractor grew up together; this corpus was written later and
on purpose apart from both: other font families (URW, TeX Gyre, Roboto, Open Sans, Lato,
Inter, Cantarell, Carlito, Arimo, Cousine, Tinos, Fira Code, Hack, JetBrains Mono, Courier
Prime, Inconsolata, Comic Neue, B612, League Spartan, Oxygen), other kinds of receipt
(supermarket tills with tax-code letters and a VAT table, item lines over two rows, card
terminal slips with no items, fuel receipts, invoices with a due date and bank details,
centred receipts with the amount beside its label, labels with the amount on the line
below, totals printed double height or white on black), other wording (the six languages
of the product and Portuguese, Polish and Swedish), and photographs made another way
(paper on wood or cloth, creases, thermal fade, motion blur, a phone's shadow, vignetting).
Like the first corpus it has a dev part to look at and a heldout part to report.
"""

import argparse
import ctypes
import json
import os
import random
import sys
from datetime import date, time, timedelta

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

FONTS = [
    "opentype/urw-base35/NimbusSans-Regular.otf", "opentype/urw-base35/NimbusSans-Bold.otf",
    "opentype/urw-base35/NimbusSansNarrow-Regular.otf", "opentype/urw-base35/NimbusRoman-Regular.otf",
    "opentype/urw-base35/NimbusMonoPS-Regular.otf", "opentype/urw-base35/NimbusMonoPS-Bold.otf",
    "opentype/urw-base35/URWGothic-Book.otf", "opentype/urw-base35/P052-Roman.otf",
    "opentype/urw-base35/C059-Roman.otf", "opentype/urw-base35/URWBookman-Light.otf",
    "truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf", "truetype/roboto/unhinted/RobotoCondensed-Regular.ttf",
    "truetype/roboto/unhinted/RobotoTTF/Roboto-Medium.ttf", "truetype/open-sans/OpenSans-Regular.ttf",
    "truetype/open-sans/OpenSans-CondBold.ttf", "truetype/lato/Lato-Regular.ttf", "truetype/lato/Lato-Bold.ttf",
    "opentype/inter/Inter-Regular.otf", "opentype/cantarell/Cantarell-Regular.otf",
    "truetype/crosextra/Carlito-Regular.ttf", "truetype/croscore/Arimo-Regular.ttf",
    "truetype/croscore/Cousine-Regular.ttf", "truetype/croscore/Tinos-Regular.ttf",
    "truetype/firacode/FiraCode-Regular.ttf", "truetype/hack/Hack-Regular.ttf",
    "truetype/jetbrains-mono/JetBrainsMono-Regular.ttf", "opentype/courier-prime/Courier Prime.otf",
    "truetype/inconsolata/Inconsolata.otf", "opentype/comic-neue/ComicNeue-Regular.otf",
    "opentype/b612/B612Mono-Regular.otf", "opentype/league-spartan/LeagueSpartan-Regular.otf",
    "truetype/oxygen/Oxygen-Sans.ttf", "truetype/anonymous-pro/Anonymous Pro.ttf",
]
FONT_ROOT = "/usr/share/fonts/"

# Per language: where such a shop is (city, country, currency), the words it prints.
LANGUAGES = {
    "en": dict(
        places=[("Manchester", "UK", "GBP"), ("Chicago, IL", "USA", "USD"), ("Denver CO", "U.S.A.", "USD"),
                ("Perth WA", "Australia", "AUD"), ("Vancouver, BC", "Canada", "CAD"), ("Cork", "Ireland", "EUR"),
                ("Wellington", "New Zealand", "NZD"), ("Praha", "Czech Republic", "CZK"),
                ("Kyoto", "Japan", "JPY"), ("Singapore", "Singapore", "SGD")],
        total=["TOTAL", "Total", "Total Amount", "TOTAL DUE", "Amount payable", "Order total", "Total Sale",
               "AMOUNT DUE", "Please pay", "Balance"],
        subtotal=["Subtotal", "Items total", "Net"], tax=["Sales tax {r}%", "VAT @ {r}%", "Tax {r}%"],
        tip=["Tip", "Service charge {r}%"], discount=["Promo", "Coupon", "Loyalty discount"],
        cash=["Cash", "Tendered"], change=["Change", "CHANGE DUE"], card=["VISA", "MASTERCARD", "Debit card", "AMEX"],
        sale="SALE", approved="APPROVED", thanks=["Thank you, come again", "Keep this receipt", "Have a nice day"],
        invoice="Invoice", invoice_no="Invoice no.", invoice_date="Invoice date", due="Due date",
        qty="Qty", desc="Description", unit="Unit price", amount="Amount", vat_table=("Rate", "Net", "Tax", "Gross"),
        items=["Flat white", "Blueberry muffin", "Chicken wrap", "Still water", "Fish & chips", "Side salad",
               "A4 folder", "Gel pens (3)", "Car park", "Minestrone", "Earl Grey", "Rye loaf", "Cheddar 200g",
               "Milk 2L", "Eggs x12", "Batteries AA", "Phone charger", "Burger", "Fries", "Iced tea"],
        kinds=["{} Deli", "{} Books", "{} Foods", "{} Kitchen", "{} Hardware", "{} Chemist", "{} Inn", "{} Cafe"],
        names=["Harbourside", "Northgate", "Willow", "Copperfield", "Bramble", "Stonebridge", "Ashford", "Lakeview"],
        fuel=("Pump", "Unleaded", "Diesel", "L"), fare=("Fare", "Extras", "Total fare")),
    "de": dict(
        places=[("München", "Deutschland", "EUR"), ("Hamburg", "", "EUR"), ("Graz", "Österreich", "EUR"),
                ("Basel", "Schweiz", "CHF"), ("Bern", "CH", "CHF")],
        total=["SUMME", "Summe EUR", "zu zahlen", "Gesamt", "Rechnungsbetrag", "Endsumme", "Betrag", "GESAMTSUMME"],
        subtotal=["Zwischensumme", "Netto"], tax=["MwSt. {r}%", "USt {r} %"], tip=["Trinkgeld"],
        discount=["Rabatt", "Aktion"], cash=["BAR", "Gegeben"], change=["Rückgeld", "Zurück"],
        card=["Girocard", "EC-Cash", "Kreditkarte"], sale="Zahlung", approved="Zahlung erfolgt",
        thanks=["Vielen Dank für Ihren Einkauf", "Bitte Bon aufbewahren", "Auf Wiedersehen"],
        invoice="Rechnung", invoice_no="Rechnungs-Nr.", invoice_date="Rechnungsdatum", due="Fällig am",
        qty="Menge", desc="Bezeichnung", unit="Einzelpreis", amount="Betrag", vat_table=("Satz", "Netto", "MwSt", "Brutto"),
        items=["Vollmilch 1L", "Roggenbrot", "Butter 250g", "Äpfel lose", "Bratwurst", "Weißbier", "Leberkäse",
               "Spezi", "Ordner A4", "Tesafilm", "Zahnpasta", "Kaffee Crema", "Käsebrötchen", "Apfelstrudel"],
        kinds=["{} Backstube", "Metzgerei {}", "{} Getränkemarkt", "Papeterie {}", "Gasthof {}", "{} Drogerie"],
        names=["Huber", "Brandl", "Seidl", "Hofmann", "Kaiser", "Wagner", "Lechner", "Bergmann"],
        fuel=("Säule", "Super E10", "Diesel", "l"), fare=("Fahrpreis", "Zuschlag", "Gesamtbetrag")),
    "fr": dict(
        places=[("Lyon", "France", "EUR"), ("Bordeaux", "", "EUR"), ("Lausanne", "Suisse", "CHF"),
                ("Liège", "Belgique", "EUR"), ("Québec, QC", "Canada", "CAD")],
        total=["TOTAL", "Total à payer", "Montant TTC", "TOTAL EUR", "Total TTC", "Somme due", "A REGLER"],
        subtotal=["Sous total", "Total HT"], tax=["TVA {r}%", "TVA {r} %"], tip=["Service"],
        discount=["Réduction", "Promo"], cash=["Espèces", "Reçu"], change=["Rendu monnaie", "A rendre"],
        card=["Carte bancaire", "CB SANS CONTACT", "VISA"], sale="DEBIT", approved="PAIEMENT ACCEPTE",
        thanks=["Merci et à bientôt", "Conservez ce ticket", "Bonne journée"],
        invoice="Facture", invoice_no="Facture n°", invoice_date="Date de facture", due="Échéance",
        qty="Qté", desc="Désignation", unit="Prix unitaire", amount="Montant", vat_table=("Taux", "HT", "TVA", "TTC"),
        items=["Pain de campagne", "Comté 250g", "Café allongé", "Galette", "Cidre brut", "Salade verte",
               "Chemise cartonnée", "Crêpe sucre", "Tarte aux pommes", "Eau gazeuse", "Steak frites", "Madeleines"],
        kinds=["Boulangerie {}", "Fromagerie {}", "Bistrot {}", "Papeterie {}", "Épicerie {}", "Crêperie {}"],
        names=["Lefèvre", "Moreau", "Girard", "Fontaine", "Rousseau", "Chevalier", "Bonnet", "Mercier"],
        fuel=("Pompe", "SP95", "Gazole", "L"), fare=("Course", "Suppléments", "Total course")),
    "es": dict(
        places=[("Sevilla", "España", "EUR"), ("Valencia", "", "EUR"), ("Guadalajara, Jal.", "México", "MXN"),
                ("Bilbao", "España", "EUR")],
        total=["TOTAL", "TOTAL (€)", "Total factura", "Importe a pagar", "Total compra", "TOTAL A PAGAR", "A PAGAR"],
        subtotal=["Subtotal", "Base"], tax=["IVA {r}%", "I.V.A. {r}%"], tip=["Propina"],
        discount=["Dto.", "Descuento"], cash=["Efectivo", "Entregado"], change=["Cambio", "Devolución"],
        card=["Tarjeta", "VISA", "Tarjeta crédito"], sale="VENTA", approved="OPERACIÓN APROBADA",
        thanks=["Gracias por su compra", "Conserve su ticket", "Hasta pronto"],
        invoice="Factura", invoice_no="Factura nº", invoice_date="Fecha factura", due="Vencimiento",
        qty="Cant.", desc="Concepto", unit="Precio", amount="Importe", vat_table=("Tipo", "Base", "Cuota", "Total"),
        items=["Caña", "Tapa de jamón", "Agua 50cl", "Pan", "Montadito", "Croquetas", "Cuaderno", "Leche 1L",
               "Aceite de oliva", "Naranjas kg", "Vino tinto", "Café solo", "Gazpacho"],
        kinds=["Bar {}", "Mesón {}", "Papelería {}", "Supermercado {}", "Panadería {}", "Taberna {}"],
        names=["Ruiz", "Morales", "Navarro", "Jiménez", "El Puerto", "La Giralda", "Santa Ana", "Alhambra"],
        fuel=("Surtidor", "Gasolina 95", "Gasóleo A", "L"), fare=("Tarifa", "Suplementos", "Total")),
    "it": dict(
        places=[("Milano", "Italia", "EUR"), ("Torino", "", "EUR"), ("Bologna (BO)", "Italia", "EUR"),
                ("Bellinzona", "Svizzera", "CHF")],
        total=["TOTALE EURO", "TOTALE", "Totale documento", "Importo pagato", "Totale da pagare", "TOT. COMPLESSIVO"],
        subtotal=["Subtotale", "Imponibile"], tax=["IVA {r}%", "di cui IVA {r}%"], tip=["Servizio"],
        discount=["Sconto", "Promozione"], cash=["Contanti", "Pagamento contante"], change=["Resto"],
        card=["Pagamento elettronico", "Carta di credito", "POS"], sale="ACQUISTO", approved="TRANSAZIONE ESEGUITA",
        thanks=["Grazie e arrivederci", "Arrivederci"],
        invoice="Fattura", invoice_no="Fattura n.", invoice_date="Data fattura", due="Scadenza",
        qty="Q.tà", desc="Descrizione", unit="Prezzo unit.", amount="Importo", vat_table=("Aliq.", "Imponibile", "Imposta", "Totale"),
        items=["Caffè", "Brioche", "Acqua frizzante", "Tramezzino", "Lasagne", "Prosciutto crudo", "Quaderno",
               "Grana 200g", "Pane", "Aranciata", "Risotto", "Gelato", "Focaccia"],
        kinds=["Caffetteria {}", "Osteria {}", "Cartoleria {}", "Panificio {}", "Salumeria {}", "Alimentari {}"],
        names=["Rossi", "Bianchi", "Ferrari", "Esposito", "Colombo", "Ricci", "Marino", "Greco"],
        fuel=("Erogatore", "Benzina", "Gasolio", "L"), fare=("Tariffa", "Supplementi", "Totale corsa")),
    "nl": dict(
        places=[("Utrecht", "Nederland", "EUR"), ("Gent", "België", "EUR"), ("Eindhoven", "", "EUR")],
        total=["TOTAAL", "Totaal EUR", "Te voldoen", "Totaal te betalen", "Eindtotaal", "Bedrag"],
        subtotal=["Subtotaal", "Excl. BTW"], tax=["BTW {r}%", "Btw {r}%"], tip=["Fooi"],
        discount=["Korting", "Bonus"], cash=["Contant", "Ontvangen"], change=["Wisselgeld", "Retour"],
        card=["PIN", "Maestro", "Creditcard"], sale="BETALING", approved="AKKOORD",
        thanks=["Bedankt voor uw bezoek", "Tot ziens"],
        invoice="Factuur", invoice_no="Factuurnummer", invoice_date="Factuurdatum", due="Vervaldatum",
        qty="Aantal", desc="Omschrijving", unit="Prijs", amount="Bedrag", vat_table=("Tarief", "Excl.", "BTW", "Incl."),
        items=["Kaas 48+", "Volkoren brood", "Melk 1L", "Appels", "Frikandel", "Patat", "Koffie verkeerd",
               "Schrift", "Drop", "Hagelslag", "Jus d'orange", "Uitsmijter", "Erwtensoep"],
        kinds=["Bakker {}", "Eetcafé {}", "Kaashandel {}", "Boekhandel {}", "Snackbar {}", "Drogist {}"],
        names=["Visser", "Smit", "Meijer", "De Boer", "Mulder", "Dekker", "Brouwer", "Van Dijk"],
        fuel=("Pomp", "Euro 95", "Diesel", "L"), fare=("Ritprijs", "Toeslag", "Totaal")),
    "pt": dict(
        places=[("Lisboa", "Portugal", "EUR"), ("Porto", "", "EUR"), ("Rio de Janeiro", "Brasil", "BRL")],
        total=["TOTAL", "Total a pagar", "Valor total", "TOTAL EUR", "A pagar"],
        subtotal=["Subtotal", "Total s/ IVA"], tax=["IVA {r}%", "Imposto {r}%"], tip=["Gorjeta"],
        discount=["Desconto"], cash=["Numerário", "Dinheiro"], change=["Troco"],
        card=["Multibanco", "Cartão", "VISA"], sale="COMPRA", approved="APROVADO",
        thanks=["Obrigado pela preferência", "Volte sempre"],
        invoice="Fatura", invoice_no="Fatura n.º", invoice_date="Data", due="Vencimento",
        qty="Qtd", desc="Descrição", unit="Preço", amount="Valor", vat_table=("Taxa", "Base", "IVA", "Total"),
        items=["Pastel de nata", "Bica", "Água 0,5L", "Bifana", "Bacalhau", "Sopa", "Caderno", "Pão", "Sumo",
               "Francesinha", "Imperial"],
        kinds=["Pastelaria {}", "Café {}", "Restaurante {}", "Papelaria {}", "Mercearia {}"],
        names=["Silva", "Costa", "Pereira", "Ferreira", "Alfama", "Ribeira", "Belém"],
        fuel=("Bomba", "Gasolina 95", "Gasóleo", "L"), fare=("Tarifa", "Suplementos", "Total")),
    "pl": dict(
        places=[("Kraków", "Polska", "PLN"), ("Gdańsk", "", "PLN"), ("Poznań", "Polska", "PLN")],
        total=["SUMA PLN", "RAZEM", "Do zapłaty", "SUMA", "Razem do zapłaty"],
        subtotal=["Suma netto", "Netto"], tax=["PTU A {r}%", "VAT {r}%"], tip=["Napiwek"],
        discount=["Rabat"], cash=["Gotówka", "Wpłata"], change=["Reszta"],
        card=["Karta", "Płatność kartą"], sale="SPRZEDAŻ", approved="ZAAKCEPTOWANO",
        thanks=["Dziękujemy za zakupy", "Zapraszamy ponownie"],
        invoice="Faktura VAT", invoice_no="Nr faktury", invoice_date="Data wystawienia", due="Termin płatności",
        qty="Ilość", desc="Nazwa", unit="Cena", amount="Wartość", vat_table=("Stawka", "Netto", "VAT", "Brutto"),
        items=["Chleb", "Masło", "Pierogi", "Kawa", "Woda 1,5L", "Kiełbasa", "Żurek", "Zeszyt", "Jabłka", "Piwo"],
        kinds=["Piekarnia {}", "Sklep {}", "Bar {}", "Kawiarnia {}", "Apteka {}"],
        names=["Nowak", "Kowalski", "Wiśniewski", "Pod Lipą", "Zielona", "Mazur"],
        fuel=("Dystr.", "PB95", "ON", "l"), fare=("Opłata", "Dopłata", "Razem")),
    "sv": dict(
        places=[("Göteborg", "Sverige", "SEK"), ("Uppsala", "", "SEK"), ("Malmö", "Sverige", "SEK")],
        total=["TOTALT", "Att betala", "Summa", "TOTALT SEK", "Totalt att betala"],
        subtotal=["Delsumma", "Netto"], tax=["Moms {r}%", "MOMS {r}%"], tip=["Dricks"],
        discount=["Rabatt"], cash=["Kontant", "Mottaget"], change=["Växel", "Tillbaka"],
        card=["Kort", "Bankkort", "VISA"], sale="KÖP", approved="GODKÄNT",
        thanks=["Tack för besöket", "Välkommen åter"],
        invoice="Faktura", invoice_no="Fakturanr", invoice_date="Fakturadatum", due="Förfallodatum",
        qty="Antal", desc="Artikel", unit="Á-pris", amount="Belopp", vat_table=("Moms%", "Netto", "Moms", "Brutto"),
        items=["Kaffe", "Kanelbulle", "Smörgås", "Mjölk 1L", "Köttbullar", "Knäckebröd", "Block", "Äpple", "Lättöl"],
        kinds=["Konditori {}", "Café {}", "Livs {}", "Bokhandel {}", "Krog {}"],
        names=["Lindqvist", "Berg", "Ekström", "Sjöberg", "Norrland", "Solsidan"],
        fuel=("Pump", "Bensin 95", "Diesel", "l"), fare=("Taxa", "Tillägg", "Att betala")),
}
# Languages weighted towards the six the product names.
LANGUAGE_WEIGHTS = {"en": 4, "de": 3, "fr": 3, "es": 3, "it": 3, "nl": 3, "pt": 1, "pl": 1, "sv": 1}

MONTHS = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "de": "Jan Feb Mär Apr Mai Jun Jul Aug Sep Okt Nov Dez",
    "fr": "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.",
    "es": "ene feb mar abr may jun jul ago sep oct nov dic",
    "it": "gen feb mar apr mag giu lug ago set ott nov dic",
    "nl": "jan feb mrt apr mei jun jul aug sep okt nov dec",
    "pt": "jan fev mar abr mai jun jul ago set out nov dez",
    "pl": "sty lut mar kwi maj cze lip sie wrz paź lis gru",
    "sv": "jan feb mar apr maj jun jul aug sep okt nov dec",
}
DECIMALS = {"JPY": 0}
# How a currency is written beside an amount, in that country.
SIGNS = {
    "EUR": ["€ {}", "{} €", "EUR {}", "{} EUR", "€{}"], "USD": ["${}", "$ {}", "{} USD"],
    "GBP": ["£{}", "£ {}", "GBP {}"], "AUD": ["${}", "AUD {}", "A${}"], "CAD": ["${}", "CAD {}", "{} $"],
    "NZD": ["${}", "NZD {}"], "CZK": ["{} Kč", "CZK {}", "{},- Kč"], "JPY": ["¥{}", "{}円", "JPY {}"],
    "SGD": ["S${}", "SGD {}", "${}"], "CHF": ["CHF {}", "{} CHF", "Fr. {}"], "MXN": ["${}", "MXN {}", "$ {} MXN"],
    "BRL": ["R$ {}", "R${}"], "PLN": ["{} zł", "{} PLN", "PLN {}"], "SEK": ["{} kr", "{} SEK", "{}:-"],
}


def amount_text(minor: int, currency: str, country: str, language: str, rng: random.Random) -> str:
    decimals = DECIMALS.get(currency, 2)
    whole, cents = divmod(abs(minor), 10 ** decimals) if decimals else (abs(minor), 0)
    if currency == "CHF":
        group, point = rng.choice([("'", "."), ("", ".")])
    elif language == "en" or currency in ("MXN", "JPY", "SGD"):
        group, point = rng.choice([(",", "."), ("", ".")])
    elif language in ("fr", "pl", "sv") or currency == "CZK":
        group, point = rng.choice([(" ", ","), ("", ",")])
    else:
        group, point = rng.choice([(".", ","), ("", ",")])
    digits = f"{whole:,}".replace(",", group)
    text = digits + (f"{point}{cents:0{decimals}d}" if decimals else "")
    return ("-" if minor < 0 else "") + text


def money(minor, currency, country, language, rng, form=None):
    text = amount_text(minor, currency, country, language, rng)
    return (form or rng.choice(SIGNS[currency])).format(text)


def date_formats(language: str, currency: str) -> list:
    """The ways a till in that country prints a day: (name, day -> text)."""
    months = MONTHS[language].split()
    if currency == "USD":
        return [("mdy-slash", lambda d: f"{d.month:02}/{d.day:02}/{d.year}"),
                ("mdy-slash-short", lambda d: f"{d.month}/{d.day}/{d.year % 100:02}"),
                ("mon-d-y", lambda d: f"{months[d.month - 1]} {d.day}, {d.year}"), ("iso", date.isoformat)]
    return [
        ("dmy-dots", lambda d: f"{d.day:02}.{d.month:02}.{d.year}"),
        ("dmy-dots-short", lambda d: f"{d.day:02}.{d.month:02}.{d.year % 100:02}"),
        ("dmy-slash", lambda d: f"{d.day:02}/{d.month:02}/{d.year}"),
        ("dmy-dash", lambda d: f"{d.day:02}-{d.month:02}-{d.year}"),
        ("iso", date.isoformat),
        ("d-mon-y", lambda d: f"{d.day} {months[d.month - 1]} {d.year}"),
        ("d-mon-y-upper", lambda d: f"{d.day:02}-{months[d.month - 1].upper().rstrip('.')}-{d.year}"),
    ]


def pick_font(rng):
    return FONT_ROOT + rng.choice(FONTS)


def build(rng: random.Random, variant: str) -> tuple:
    language = rng.choices(list(LANGUAGE_WEIGHTS), weights=list(LANGUAGE_WEIGHTS.values()))[0]
    w = LANGUAGES[language]
    city, country, currency = rng.choice(w["places"])
    merchant = rng.choice(w["kinds"]).format(rng.choice(w["names"]))
    kind = rng.choices(["till", "two-row", "invoice", "slip", "fuel", "centred", "below"],
                       weights=[5, 3, 3, 2, 1, 2, 2])[0]
    day = date(2023, 1, 1) + timedelta(days=rng.randint(0, 1400))
    at = time(rng.randint(6, 23), rng.randint(0, 59), rng.randint(0, 59))
    date_kind, date_format = rng.choice(date_formats(language, currency))
    date_only = date_format(day)
    clock = f"{at.hour:02}:{at.minute:02}" + (f":{at.second:02}" if rng.random() < 0.4 else "")
    printed_date = date_only
    if rng.random() < 0.7:
        printed_date = f"{date_only} {clock}" if rng.random() < 0.7 else f"{clock} {date_only}"
    scale = 100 if DECIMALS.get(currency, 2) == 2 else 1
    def unit() -> int:
        if currency == "JPY":
            return rng.randint(80, 4000)  # yen prices are whole
        if currency in ("CZK", "SEK", "MXN"):
            return rng.randint(15, 900) * scale + rng.choice([0, 0, 50, 90])
        return rng.randint(60, 3500) if rng.random() < 0.95 else rng.randint(3500, 30000)

    def fmt(minor: int) -> str:
        return money(minor, currency, country, language, rng)

    def plain(minor: int) -> str:
        return amount_text(minor, currency, country, language, rng)

    sign_everywhere = rng.random() < 0.3

    def show(minor: int) -> str:
        return fmt(minor) if sign_everywhere else plain(minor)

    rows = []  # (style, left, right): style in text/center/pair/big/inverse/rule/gap/logo
    if rng.random() < 0.25:
        rows.append(("logo", "", ""))
    rows.append(("big-center", merchant, ""))
    if rng.random() < 0.5:
        rows.append(("center", f"{rng.randint(1, 220)} {rng.choice(['Main St', 'Hauptstr.', 'Rue Neuve', 'Via Roma', 'Calle Mayor', 'Kerkstraat', 'Rua Nova', 'ul. Długa', 'Storgatan'])}", ""))
    rows.append(("center", f"{rng.randint(1000, 99999)} {city}".strip() if rng.random() < 0.6 else city, ""))
    if country:
        rows.append(("center", country, ""))
    if rng.random() < 0.5:
        rows.append(("center", rng.choice(["Tel. ", "Tel: ", "Ph ", "☎ "]) + f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(100000, 999999)}", ""))
    if rng.random() < 0.4:
        rows.append(("center", rng.choice(["VAT No ", "USt-IdNr. ", "SIRET ", "CIF ", "P.IVA ", "BTW ", "NIF ", "NIP ", "Org.nr "]) + str(rng.randint(10**8, 10**10)), ""))
    rows.append(("rule", "", ""))
    if sign_everywhere is False and rng.random() < 0.5:
        rows.append(("text", {"en": "Prices in", "de": "Preise in", "fr": "Prix en", "es": "Precios en", "it": "Prezzi in",
                              "nl": "Prijzen in", "pt": "Preços em", "pl": "Ceny w", "sv": "Priser i"}[language] + f" {currency}", ""))
    receipt_no = f"{rng.randint(1, 9999):04}"
    date_line = ("pair", printed_date, f"#{receipt_no}") if rng.random() < 0.5 else ("text", printed_date, "")

    tax_rate = rng.choice([5, 7, 10, 19, 20, 21, 22, 23, 25, 8.1])
    count = rng.randint(1, 6) if kind in ("centred", "below") else rng.randint(2, 16)
    items = [(rng.choice(w["items"]), rng.choice([1, 1, 1, 2, 3]), unit()) for _ in range(count)]
    subtotal = sum(q * p for _, q, p in items)
    discount = -rng.randint(1, max(1, subtotal // 8)) if rng.random() < 0.2 else 0
    added_tax = currency in ("USD", "CAD") and rng.random() < 0.8
    tax = round((subtotal + discount) * tax_rate / 100) if added_tax else \
        round((subtotal + discount) * tax_rate / (100 + tax_rate))
    tip = round((subtotal + discount) * rng.choice([0.1, 0.12, 0.15])) if rng.random() < 0.12 else 0
    total = subtotal + discount + (tax if added_tax else 0) + tip

    def total_rows(style):
        label = rng.choice(w["total"])
        shown = fmt(total) if rng.random() < 0.7 else plain(total)
        if style == "below":
            return [("text", label, ""), ("right", "", shown)]
        if style == "centred":
            return [("big-center" if rng.random() < 0.5 else "center", f"{label}: {shown}", "")]
        emphasis = rng.choices(["pair", "big", "inverse"], weights=[5, 3, 2])[0]
        return [(emphasis, label, shown)]

    def payment_rows():
        out = []
        paid = rng.random()
        if paid < 0.35:
            given = (total // 1000 + 1) * 1000
            out += [("pair", rng.choice(w["cash"]), show(given)), ("pair", rng.choice(w["change"]), show(given - total))]
        elif paid < 0.8:
            out.append(("pair", rng.choice(w["card"]), show(total)))
            if rng.random() < 0.5:
                out.append(("text", f"**** **** **** {rng.randint(1000, 9999)}", ""))
                out.append(("text", f"AID A0000000{rng.randint(10, 99)}1010  AUTH {rng.randint(100000, 999999)}", ""))
        return out

    def vat_table():
        a, b, c, d = w["vat_table"]
        gross = total - tip
        net = gross - tax
        rate = f"{tax_rate}%"
        return [("cols", f"{a}|{b}|{c}|{d}", ""), ("cols", f"{rate}|{plain(net)}|{plain(tax)}|{plain(gross)}", "")]

    if kind in ("till", "two-row", "centred", "below"):
        rows.append(date_line)
        rows.append(("rule", "", ""))
        for name, q, p in items:
            code = rng.choice(["", "", " A", " B"]) if kind == "till" and language in ("de", "nl", "pl") else ""
            if kind == "two-row" or (q > 1 and rng.random() < 0.6):
                rows.append(("text", name, ""))
                rows.append(("pair", f"   {q} x {plain(p)}", show(q * p) + code))
            elif kind == "centred":
                rows.append(("center", f"{q} {name}  {show(q * p)}", ""))
            else:
                rows.append(("pair", (f"{q} " if q > 1 else "") + name, show(q * p) + code))
        rows.append(("rule", "", ""))
        if discount:
            rows.append(("pair", rng.choice(w["discount"]), show(discount)))
        if added_tax or rng.random() < 0.4:
            rows.append(("pair", rng.choice(w["subtotal"]), show(subtotal + discount)))
        if added_tax:
            rows.append(("pair", rng.choice(w["tax"]).format(r=tax_rate), show(tax)))
        if tip:
            rows.append(("pair", rng.choice(w["tip"]).format(r=10), show(tip)))
        rows += total_rows(kind if kind in ("centred", "below") else "till")
        rows.append(("gap", "", ""))
        rows += payment_rows()
        if not added_tax and rng.random() < 0.6:
            rows.append(("gap", "", ""))
            rows += vat_table()
    elif kind == "fuel":
        pump, petrol, diesel, litre = w["fuel"]
        price = rng.randint(1450, 2199)
        volume = rng.randint(1500, 6500) / 100
        total = round(volume * price / 10) if scale == 100 else round(volume * price / 1000)
        tax = round(total * tax_rate / (100 + tax_rate))
        tip, added_tax = 0, False
        rows.append(date_line)
        rows.append(("rule", "", ""))
        rows.append(("text", f"{pump} {rng.randint(1, 12):02}  {rng.choice([petrol, diesel])}", ""))
        rows.append(("pair", f"{volume:.2f} {litre} x {price / 1000:.3f}".replace(".", "," if language != "en" else "."),
                     show(total)))
        rows.append(("rule", "", ""))
        rows += total_rows("till")
        rows += payment_rows()
        if rng.random() < 0.6:
            rows += vat_table()
    elif kind == "slip":
        tip, discount, added_tax = 0, 0, False
        rows.append(("center", w["sale"], ""))
        rows.append(("text", f"TID {rng.randint(10**7, 10**8 - 1)}  MID {rng.randint(10**9, 10**10 - 1)}", ""))
        rows.append(date_line)
        rows.append(("text", rng.choice(w["card"]) + f"  **** {rng.randint(1000, 9999)}", ""))
        rows += total_rows("till")
        rows.append(("center", w["approved"], ""))
        rows.append(("text", f"AUTH {rng.randint(100000, 999999)}  REF {rng.randint(10**5, 10**6 - 1)}", ""))
    else:  # invoice
        due = day + timedelta(days=rng.choice([14, 30, 60]))
        rows.append(("pair", w["invoice_no"], f"{day.year}-{rng.randint(1, 999):04}"))
        # Invoices print the day alone, in one format for both dates.
        rows.append(("pair", w["invoice_date"], date_only))
        rows.append(("pair", w["due"], date_format(due)))
        rows.append(("rule", "", ""))
        rows.append(("cols", f"{w['desc']}|{w['qty']}|{w['unit']}|{w['amount']}", ""))
        for name, q, p in items:
            rows.append(("cols", f"{name}|{q}|{plain(p)}|{plain(q * p)}", ""))
        rows.append(("rule", "", ""))
        if discount:
            rows.append(("pair", rng.choice(w["discount"]), show(discount)))
        net = subtotal + discount if added_tax else subtotal + discount - tax
        rows.append(("pair", rng.choice(w["subtotal"]), show(net)))
        rows.append(("pair", rng.choice(w["tax"]).format(r=tax_rate), show(tax)))
        total = net + tax + tip
        if tip:
            rows.append(("pair", rng.choice(w["tip"]).format(r=10), show(tip)))
        rows += total_rows("till")
        rows.append(("gap", "", ""))
        rows.append(("text", f"IBAN DE{rng.randint(10, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)} "
                             f"{rng.randint(1000, 9999)} {rng.randint(1000, 9999)} {rng.randint(10, 99)}", ""))
    rows.append(("gap", "", ""))
    rows.append(("center", rng.choice(w["thanks"]), ""))
    if rng.random() < 0.3:
        rows.append(("barcode", "", ""))
    truth = dict(merchant=merchant, date=day.isoformat(), currency=currency, language=language, layout=kind,
                 date_format=date_kind, total=(f"{total // 100}.{total % 100:02}" if scale == 100 else str(total)))
    return rows, truth


def render(rows, rng: random.Random, font_path: str, size: int, width_chars: int) -> Image.Image:
    font = ImageFont.truetype(font_path, size)
    big = ImageFont.truetype(font_path, int(size * rng.uniform(1.3, 1.8)))
    probe = font.getbbox("0000000000")
    char = (probe[2] - probe[0]) / 10
    width = int(char * width_chars) + 2 * size
    line = int(size * rng.uniform(1.15, 1.6))
    height = sum(line * (2 if s in ("big", "big-center", "inverse", "logo") else 1) for s, *_ in rows) + 3 * size
    paper = rng.randint(235, 255)
    image = Image.new("L", (width, height), paper)
    draw = ImageDraw.Draw(image)
    ink = rng.randint(0, 60)
    margin = size
    y = size
    tall = rng.random() < 0.5  # double-height totals stretched rather than a bigger face
    for style, left, right in rows:
        if style == "logo":
            box = (width // 2 - 2 * size, y, width // 2 + 2 * size, y + int(1.8 * line))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, outline=ink, width=max(2, size // 8))
            y += 2 * line
        elif style in ("center", "big-center"):
            f = big if style == "big-center" else font
            text_w = draw.textlength(left, font=f)
            draw.text(((width - text_w) / 2, y), left, font=f, fill=ink)
            y += line * (2 if style == "big-center" else 1)
        elif style == "text":
            draw.text((margin, y), left, font=font, fill=ink)
            y += line
        elif style == "right":
            draw.text((width - margin - draw.textlength(right, font=font), y), right, font=font, fill=ink)
            y += line
        elif style == "pair":
            draw.text((margin, y), left, font=font, fill=ink)
            draw.text((width - margin - draw.textlength(right, font=font), y), right, font=font, fill=ink)
            y += line
        elif style in ("big", "inverse"):
            if style == "inverse":
                draw.rectangle((margin // 2, y - size // 4, width - margin // 2, y + 2 * line - size // 3), fill=ink)
            colour = paper if style == "inverse" else ink
            if tall:
                # Drawn at the normal size and stretched to twice its height, as a till prints it.
                strip = Image.new("L", (width, line), 0)
                sd = ImageDraw.Draw(strip)
                sd.text((margin, 0), left, font=font, fill=255)
                sd.text((width - margin - sd.textlength(right, font=font), 0), right, font=font, fill=255)
                strip = strip.resize((width, 2 * line))
                image.paste(Image.new("L", strip.size, colour), (0, y), strip)
            else:
                draw.text((margin, y), left, font=big, fill=colour)
                draw.text((width - margin - draw.textlength(right, font=big), y), right, font=big, fill=colour)
            y += 2 * line
        elif style == "cols":
            cells = left.split("|")
            stops = [margin, int(width * 0.52), int(width * 0.7), width - margin]
            draw.text((stops[0], y), cells[0], font=font, fill=ink)
            for cell, stop in zip(cells[1:], stops[1:]):
                draw.text((stop - draw.textlength(cell, font=font), y), cell, font=font, fill=ink)
            y += line
        elif style == "rule":
            if rng.random() < 0.5:
                draw.line((margin, y + line // 2, width - margin, y + line // 2), fill=ink, width=max(1, size // 12))
            else:
                dash = rng.choice("-=*")
                count = int((width - 2 * margin) / max(1, draw.textlength(dash, font=font)))
                draw.text((margin, y), dash * count, font=font, fill=ink)
            y += line
        elif style == "barcode":
            x = width // 4
            while x < 3 * width // 4:
                bar = rng.randint(1, 4)
                draw.rectangle((x, y, x + bar, y + line), fill=ink)
                x += bar + rng.randint(1, 4)
            y += line
        else:  # gap
            y += line // 2
    return image.crop((0, 0, width, min(height, y + size)))


def photograph(image: Image.Image, rng: random.Random, spec: dict) -> Image.Image:
    w, h = image.size
    # Thermal fade: the ink weakens in bands along the roll.
    if rng.random() < 0.5:
        weakest = rng.uniform(0.2, 0.6)
        fade = Image.linear_gradient("L").resize((w, h)).point(lambda v: int(255 - v * weakest))
        inverted = ImageOps.invert(image)
        image = ImageOps.invert(ImageChops.multiply(inverted, fade))
    # Creases: the paper folded across.
    for _ in range(rng.choice([0, 0, 1, 2])):
        crease = Image.new("L", (w, h), 255)
        cy = rng.randint(h // 5, 4 * h // 5)
        ImageDraw.Draw(crease).line((0, cy, w, cy + rng.randint(-h // 30, h // 30)), fill=rng.randint(150, 210),
                                     width=rng.randint(2, 6))
        image = ImageChops.multiply(image, crease.filter(ImageFilter.GaussianBlur(2)))
    # On a table or cloth: the surface's own texture, darker than paper, sometimes tinted.
    pad_x, pad_y = int(w * rng.uniform(0.08, 0.35)), int(h * rng.uniform(0.04, 0.15))
    surface_tone = rng.randint(20, 170)
    surface = grey_noise(rng, (w + 2 * pad_x, h + 2 * pad_y), rng.uniform(10, 40)).point(
        lambda v: max(0, min(255, surface_tone + (v - 128) // 2)))
    if rng.random() < 0.5:
        surface = surface.resize((max(1, surface.width // 8), surface.height)).resize(surface.size)  # grain of wood
    surface.paste(image, (pad_x, pad_y))
    image = surface
    # Held at an angle: a keystone from the phone's tilt, then turned.
    W, H = image.size
    k = rng.uniform(0, 0.12)
    far, near = (W * k, 0) if rng.random() < 0.7 else (0, W * k)
    # The source quadrilateral (upper left, lower left, lower right, upper right): wider
    # than the image at the edge further from the phone, which thus comes out narrower.
    corners = [(-far, 0), (-near, H), (W + near, H), (W + far, 0)]
    image = image.transform((W, H), Image.QUAD, [c for xy in corners for c in xy], resample=Image.BICUBIC,
                            fillcolor=surface_tone)
    angle = rng.uniform(-15, 15)
    image = image.rotate(angle, expand=True, resample=Image.BICUBIC, fillcolor=surface_tone)
    spec.update(rotate=round(angle, 1), keystone=round(k, 3))
    # Light: a vignette, and the phone's shadow falling on part of the page.
    W, H = image.size
    strength = rng.uniform(0.1, 0.45)
    vignette = Image.radial_gradient("L").point(lambda v: int(255 - v * strength)).resize((W, H), Image.BICUBIC)
    vignette = vignette.filter(ImageFilter.GaussianBlur(max(W, H) / 40))
    image = ImageChops.multiply(image, vignette)
    if rng.random() < 0.5:
        shade = Image.new("L", (W, H), 255)
        x0 = rng.randint(0, W)
        ImageDraw.Draw(shade).rectangle((x0, rng.randint(-H, H // 2), x0 + W, H * 2), fill=rng.randint(90, 170))
        image = ImageChops.multiply(image, shade.filter(ImageFilter.GaussianBlur(rng.randint(10, 40))))
    # Shaken: a short blur along one direction, or out of focus.
    if rng.random() < 0.4:
        length = rng.randint(2, 5)
        kernel = [0.0] * 25
        horizontal = rng.random() < 0.5
        for i in range(length):
            kernel[(2 * 5 + i) if horizontal else (i * 5 + 2)] = 1.0
        image = image.filter(ImageFilter.Kernel((5, 5), kernel, scale=length))
        spec["shake"] = length
    else:
        radius = rng.uniform(0.4, 1.8)
        image = image.filter(ImageFilter.GaussianBlur(radius))
        spec["blur"] = round(radius, 2)
    # Sensor noise around no change: effect_noise is centred on 128.
    image = ImageChops.add(image, grey_noise(rng, image.size, rng.uniform(5, 25)), 1, -128)
    # As a phone delivers it, though never so small that letters are under ~15 pixels.
    factor = max(rng.uniform(0.5, 1.1), 15 / spec["size"])
    spec["scale"] = round(factor, 2)
    return image.resize((max(1, int(image.width * factor)), max(1, int(image.height * factor))), Image.LANCZOS)


# The C library's generator, which PIL's effect_noise draws from.
LIBC = ctypes.CDLL(None)


def grey_noise(rng: random.Random, size: tuple, sigma: float) -> Image.Image:
    """PIL's Gaussian noise around 128, its generator seeded from the receipt's own: left
    alone it carries on from the receipts drawn before, and a receipt drawn alone, or with
    one language's receipts only, would not be the one a longer run drew."""
    # From the generator's state, drawing nothing from it: the rest of the receipt's image
    # stays as it was drawn before. Its tuple of numbers hashes the same in every run; the
    # whole state, which holds a None, does not before Python 3.12.
    LIBC.srand(hash(rng.getstate()[1]) & 0x7FFFFFFF)
    return Image.effect_noise(size, sigma)


def generate(part: str, index: int, variant: str, out: str, languages=None) -> dict | None:
    rng = random.Random(f"strangers:{part}:{variant}:{index}")
    rows, truth = build(rng, variant)
    # Every receipt has its own seed: leaving out the other languages draws the same
    # receipts of these, sooner.
    if languages and truth["language"] not in languages:
        return None
    font = pick_font(rng)
    size = rng.randint(16, 36) if variant == "clean" else rng.randint(22, 40)
    width_chars = rng.choice([32, 40, 48]) if truth["layout"] != "invoice" else rng.choice([60, 72])
    image = render(rows, rng, font, size, width_chars)
    spec = {"font": font[len(FONT_ROOT):], "size": size}
    name = f"{variant}-{index:04}"
    if variant == "photo":
        image = photograph(image, rng, spec)
        quality = rng.randint(35, 85)
        spec["jpeg_quality"] = quality
        path = os.path.join(out, name + ".jpg")
        image.convert("RGB").save(path, "JPEG", quality=quality)
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
    parser.add_argument("--variants", default="clean,photo")
    parser.add_argument("--first", type=int, default=0, help="index of the first receipt")
    parser.add_argument("--languages", help="comma-separated: only receipts in these languages")
    args = parser.parse_args()
    languages = set(args.languages.split(",")) if args.languages else None
    if languages and not languages <= set(LANGUAGES):
        sys.exit(f"unknown languages {', '.join(sorted(languages - set(LANGUAGES)))}: {', '.join(LANGUAGES)}")
    missing = [f for f in FONTS if not os.path.exists(FONT_ROOT + f)]
    if missing:
        sys.exit(f"fonts missing (scripts/lib.sh install_stranger_fonts installs them): {', '.join(missing)}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "truth.jsonl"), "w", encoding="utf-8") as truth:
        kept = 0
        for variant in args.variants.split(","):
            if variant not in ("clean", "photo"):
                sys.exit(f"unknown variant {variant}: this corpus draws clean and photo receipts")
            for index in range(args.first, args.first + args.count):
                drawn = generate(args.part, index, variant, args.out, languages)
                if drawn is not None:
                    truth.write(json.dumps(drawn, ensure_ascii=False) + "\n")
                    kept += 1
    print(f"{args.out}: {kept} receipts drawn, indices {args.first}… ({args.count}) per variant ({args.part}, strangers)", file=sys.stderr)


if __name__ == "__main__":
    main()
