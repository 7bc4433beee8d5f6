//! Which currency a receipt is in: from ISO codes, from symbols as CLDR prints them
//! (`CA$`, `A$`, `NZ$`, `HK$`, `MX$`, `R$`, `zł`, `Kč`, `Fr.` …), and — for the symbols
//! several currencies share (`$`, `¥`, `kr`) — from the merchant's country where the
//! receipt prints it.

use super::words::{fold, one_edit_apart, says};

/// ISO codes looked for as whole words. Codes that are also common words on receipts
/// (ALL, CUP, PEN, TOP, BAM, MOP) are left out.
const CODES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "BRL", "SEK",
    "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "INR", "KRW", "CNY", "ZAR", "TRY", "ILS",
    "THB", "ISK",
];

/// Whether `word` is one of the currency codes looked for.
pub fn is_code(word: &str) -> bool {
    CODES.contains(&word)
}

/// Symbols that name one currency, longest first so that `CA$` is not read as `$`.
const SYMBOLS: &[(&str, &str)] = &[
    ("SFr.", "CHF"),
    ("US$", "USD"),
    ("CA$", "CAD"),
    ("AU$", "AUD"),
    ("NZ$", "NZD"),
    ("HK$", "HKD"),
    ("MX$", "MXN"),
    ("CN¥", "CNY"),
    ("RMB", "CNY"),
    ("C$", "CAD"),
    ("A$", "AUD"),
    ("R$", "BRL"),
    ("S$", "SGD"),
    ("sFr.", "CHF"),
    ("Fr.", "CHF"),
    ("Rs.", "INR"),
    ("Rs", "INR"),
    ("zł", "PLN"),
    // `ł` as OCR reads it: most often `t`, on photos also `i`; `zl` is how tills without
    // the letter print it.
    ("zt", "PLN"),
    ("zi", "PLN"),
    ("zl", "PLN"),
    ("Kč", "CZK"),
    ("Ft", "HUF"),
    ("lei", "RON"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("₹", "INR"),
    ("₩", "KRW"),
    ("원", "KRW"),
    ("円", "JPY"),
];

/// Symbols that several currencies print; the first is the most common reading.
const SHARED: &[(&str, &[&str])] = &[
    ("$", &["USD", "CAD", "AUD", "NZD", "HKD", "MXN", "SGD"]),
    ("¥", &["JPY", "CNY"]),
    ("kr.", &["DKK", "NOK", "SEK", "ISK"]),
    ("kr", &["SEK", "NOK", "DKK", "ISK"]),
];

/// Countries as receipts print them (folded), and their currency.
const COUNTRIES: &[(&str, &str)] = &[
    ("usa", "USD"),
    ("united states", "USD"),
    ("u.s.a", "USD"),
    ("canada", "CAD"),
    ("australia", "AUD"),
    ("new zealand", "NZD"),
    ("hong kong", "HKD"),
    ("mexico", "MXN"),
    ("singapore", "SGD"),
    ("japan", "JPY"),
    ("nippon", "JPY"),
    ("china", "CNY"),
    ("brasil", "BRL"),
    ("brazil", "BRL"),
    ("sverige", "SEK"),
    ("sweden", "SEK"),
    ("norge", "NOK"),
    ("norway", "NOK"),
    ("danmark", "DKK"),
    ("denmark", "DKK"),
    ("iceland", "ISK"),
    ("polska", "PLN"),
    ("poland", "PLN"),
    ("cesko", "CZK"),
    ("czechia", "CZK"),
    ("czech republic", "CZK"),
    ("ceska republika", "CZK"),
    ("magyarorszag", "HUF"),
    ("hungary", "HUF"),
    ("india", "INR"),
    ("korea", "KRW"),
    ("schweiz", "CHF"),
    ("suisse", "CHF"),
    ("svizzera", "CHF"),
    ("switzerland", "CHF"),
    ("united kingdom", "GBP"),
    ("uk", "GBP"),
    ("england", "GBP"),
    ("deutschland", "EUR"),
    ("germany", "EUR"),
    ("france", "EUR"),
    ("espana", "EUR"),
    ("spain", "EUR"),
    ("italia", "EUR"),
    ("italy", "EUR"),
    ("nederland", "EUR"),
    ("netherlands", "EUR"),
    ("osterreich", "EUR"),
    ("austria", "EUR"),
    ("belgique", "EUR"),
    ("belgie", "EUR"),
    ("ireland", "EUR"),
    ("portugal", "EUR"),
];

/// Cities receipts print in their address (folded), and their country's currency, for
/// receipts that name no country: capitals and the largest cities, in the local and the
/// English spelling. Names that are also common elsewhere (Perth, Wellington, Bergen)
/// are left out.
const CITIES: &[(&str, &str)] = &[
    ("new york", "USD"),
    ("los angeles", "USD"),
    ("chicago", "USD"),
    ("houston", "USD"),
    ("san francisco", "USD"),
    ("boston", "USD"),
    ("seattle", "USD"),
    ("austin", "USD"),
    ("dallas", "USD"),
    ("miami", "USD"),
    ("toronto", "CAD"),
    ("montreal", "CAD"),
    ("vancouver", "CAD"),
    ("ottawa", "CAD"),
    ("calgary", "CAD"),
    ("sydney", "AUD"),
    ("melbourne", "AUD"),
    ("brisbane", "AUD"),
    ("adelaide", "AUD"),
    ("canberra", "AUD"),
    ("auckland", "NZD"),
    ("christchurch", "NZD"),
    ("kowloon", "HKD"),
    ("ciudad de mexico", "MXN"),
    ("guadalajara", "MXN"),
    ("monterrey", "MXN"),
    ("cancun", "MXN"),
    ("tokyo", "JPY"),
    ("osaka", "JPY"),
    ("kyoto", "JPY"),
    ("yokohama", "JPY"),
    ("nagoya", "JPY"),
    ("sapporo", "JPY"),
    ("beijing", "CNY"),
    ("shanghai", "CNY"),
    ("shenzhen", "CNY"),
    ("guangzhou", "CNY"),
    ("sao paulo", "BRL"),
    ("rio de janeiro", "BRL"),
    ("brasilia", "BRL"),
    ("stockholm", "SEK"),
    ("goteborg", "SEK"),
    ("gothenburg", "SEK"),
    ("malmo", "SEK"),
    ("oslo", "NOK"),
    ("trondheim", "NOK"),
    ("kobenhavn", "DKK"),
    ("copenhagen", "DKK"),
    ("aarhus", "DKK"),
    ("odense", "DKK"),
    ("reykjavik", "ISK"),
    ("warszawa", "PLN"),
    ("warsaw", "PLN"),
    ("krakow", "PLN"),
    ("gdansk", "PLN"),
    ("wroclaw", "PLN"),
    ("poznan", "PLN"),
    ("praha", "CZK"),
    ("prague", "CZK"),
    ("brno", "CZK"),
    ("budapest", "HUF"),
    ("mumbai", "INR"),
    ("delhi", "INR"),
    ("new delhi", "INR"),
    ("bengaluru", "INR"),
    ("bangalore", "INR"),
    ("chennai", "INR"),
    ("kolkata", "INR"),
    ("hyderabad", "INR"),
    ("seoul", "KRW"),
    ("busan", "KRW"),
    ("zurich", "CHF"),
    ("geneve", "CHF"),
    ("geneva", "CHF"),
    ("basel", "CHF"),
    ("bern", "CHF"),
    ("lausanne", "CHF"),
    ("luzern", "CHF"),
    ("lugano", "CHF"),
    ("winterthur", "CHF"),
    ("st gallen", "CHF"),
    ("london", "GBP"),
    ("manchester", "GBP"),
    ("birmingham", "GBP"),
    ("edinburgh", "GBP"),
    ("glasgow", "GBP"),
    ("liverpool", "GBP"),
    ("bristol", "GBP"),
    ("leeds", "GBP"),
    ("paris", "EUR"),
    ("lyon", "EUR"),
    ("marseille", "EUR"),
    ("berlin", "EUR"),
    ("hamburg", "EUR"),
    ("munchen", "EUR"),
    ("munich", "EUR"),
    ("koln", "EUR"),
    ("frankfurt am main", "EUR"),
    ("wien", "EUR"),
    ("vienna", "EUR"),
    ("madrid", "EUR"),
    ("barcelona", "EUR"),
    ("sevilla", "EUR"),
    ("valencia", "EUR"),
    ("roma", "EUR"),
    ("rome", "EUR"),
    ("milano", "EUR"),
    ("milan", "EUR"),
    ("napoli", "EUR"),
    ("torino", "EUR"),
    ("firenze", "EUR"),
    ("amsterdam", "EUR"),
    ("rotterdam", "EUR"),
    ("den haag", "EUR"),
    ("utrecht", "EUR"),
    ("bruxelles", "EUR"),
    ("brussel", "EUR"),
    ("antwerpen", "EUR"),
    ("dublin", "EUR"),
    ("lisboa", "EUR"),
    ("porto", "EUR"),
    // The next largest cities of the countries above, where the name is no word of a
    // receipt's languages nor another country's town (`Essen` is food, `Nice` a wish,
    // `Mérida` in Spain and Mexico alike).
    ("philadelphia", "USD"),
    ("phoenix", "USD"),
    ("san diego", "USD"),
    ("denver", "USD"),
    ("atlanta", "USD"),
    ("las vegas", "USD"),
    ("edmonton", "CAD"),
    ("winnipeg", "CAD"),
    ("hobart", "AUD"),
    ("fukuoka", "JPY"),
    ("kobe", "JPY"),
    ("hiroshima", "JPY"),
    ("sendai", "JPY"),
    ("puebla", "MXN"),
    ("tijuana", "MXN"),
    ("belo horizonte", "BRL"),
    ("curitiba", "BRL"),
    ("porto alegre", "BRL"),
    ("recife", "BRL"),
    ("fortaleza", "BRL"),
    ("uppsala", "SEK"),
    ("vasteras", "SEK"),
    ("orebro", "SEK"),
    ("linkoping", "SEK"),
    ("helsingborg", "SEK"),
    ("lodz", "PLN"),
    ("szczecin", "PLN"),
    ("lublin", "PLN"),
    ("katowice", "PLN"),
    ("bydgoszcz", "PLN"),
    ("ostrava", "CZK"),
    ("plzen", "CZK"),
    ("bellinzona", "CHF"),
    ("fribourg", "CHF"),
    ("neuchatel", "CHF"),
    ("sheffield", "GBP"),
    ("cardiff", "GBP"),
    ("belfast", "GBP"),
    ("nottingham", "GBP"),
    ("leicester", "GBP"),
    ("toulouse", "EUR"),
    ("nantes", "EUR"),
    ("strasbourg", "EUR"),
    ("montpellier", "EUR"),
    ("bordeaux", "EUR"),
    ("lille", "EUR"),
    ("rennes", "EUR"),
    ("stuttgart", "EUR"),
    ("dusseldorf", "EUR"),
    ("dortmund", "EUR"),
    ("leipzig", "EUR"),
    ("bremen", "EUR"),
    ("dresden", "EUR"),
    ("hannover", "EUR"),
    ("nurnberg", "EUR"),
    ("zaragoza", "EUR"),
    ("malaga", "EUR"),
    ("bilbao", "EUR"),
    ("alicante", "EUR"),
    ("bologna", "EUR"),
    ("genova", "EUR"),
    ("palermo", "EUR"),
    ("verona", "EUR"),
    ("venezia", "EUR"),
    ("eindhoven", "EUR"),
    ("groningen", "EUR"),
    ("tilburg", "EUR"),
    ("nijmegen", "EUR"),
    ("haarlem", "EUR"),
    ("gent", "EUR"),
    ("liege", "EUR"),
    ("brugge", "EUR"),
    ("namur", "EUR"),
    ("graz", "EUR"),
    ("linz", "EUR"),
    ("salzburg", "EUR"),
    ("innsbruck", "EUR"),
    ("coimbra", "EUR"),
    ("braga", "EUR"),
];

/// Lines from the top in which an address's city is looked for.
const ADDRESS_LINES: usize = 8;

/// A currency mark on a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// A code or a symbol of one currency.
    One(&'static str),
    /// A symbol several currencies print, most common reading first.
    Shared(&'static [&'static str]),
}

/// The currency marks of one line (original case), left to right by kind: codes, then
/// one-currency symbols, then shared symbols not part of a longer one; each currency once.
pub fn marks(line: &str) -> Vec<Mark> {
    let mut found = Vec::new();
    let upper = line.to_uppercase();
    for code in CODES {
        let whole_word = upper
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|w| w == *code);
        if whole_word {
            found.push(Mark::One(code));
        }
    }
    let mut rest = line.to_string();
    for (symbol, code) in SYMBOLS {
        if contains_symbol(&rest, symbol) {
            // A code and a sign of one currency (`TOTAL EUR  € 44,64`) are one mark.
            if !found.contains(&Mark::One(code)) {
                found.push(Mark::One(code));
            }
            rest = rest.replace(symbol, " ");
        }
    }
    for (symbol, codes) in SHARED {
        if contains_symbol(&rest, symbol) {
            found.push(Mark::Shared(codes));
            rest = rest.replace(symbol, " ");
        }
    }
    found
}

/// The code OCR damaged in one letter right next to an amount (`FUR 124.00`, `124.00
/// EUK`), when exactly one code is that close; `None` otherwise.
pub fn misread_code(line: &str) -> Option<&'static str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let amount_like = |w: &str| w.chars().next().is_some_and(|c| c.is_ascii_digit());
    words.iter().enumerate().find_map(|(i, word)| {
        let beside_amount = words.get(i + 1).is_some_and(|w| amount_like(w))
            || (i > 0 && amount_like(words[i - 1]));
        if !beside_amount || word.len() != 3 || !word.chars().all(|c| c.is_ascii_uppercase()) {
            return None;
        }
        let mut close = CODES.iter().filter(|code| {
            code.bytes()
                .zip(word.bytes())
                .filter(|(a, b)| a != b)
                .count()
                == 1
        });
        match (close.next(), close.next()) {
            (Some(code), None) => Some(*code),
            _ => None,
        }
    })
}

/// Whether `code`'s currency prints `$` for its sign.
pub fn signs_dollar(code: &str) -> bool {
    SHARED
        .iter()
        .any(|(symbol, codes)| *symbol == "$" && codes.contains(&code))
}

/// The currency whose sign OCR read as the `letters` glued to an amount
/// ([`super::amounts::after_misread_sign`]): `₩` as `W` (`W13.464`, `wW88 332`), the `$`
/// of `A$`, `CA$`, `HK$` … as `s` or `S` (`As49,77`, `CAS89`).
pub fn misread_sign(letters: &str) -> Option<&'static str> {
    if letters.chars().all(|c| c == 'w' || c == 'W') {
        return Some("KRW");
    }
    let dollar = format!("{}$", letters.strip_suffix(['s', 'S'])?.to_uppercase());
    SYMBOLS
        .iter()
        .find(|(symbol, _)| *symbol == dollar)
        .map(|(_, code)| *code)
}

/// Symbols made of letters count only standing apart from other letters ("Ft" is not in
/// "Gift", "kr" not in "Kraut"); the others wherever they stand.
fn contains_symbol(line: &str, symbol: &str) -> bool {
    let lettered = symbol.chars().last().is_some_and(char::is_alphabetic)
        || symbol.chars().next().is_some_and(char::is_alphabetic);
    if !lettered {
        return line.contains(symbol);
    }
    line.match_indices(symbol).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + symbol.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphabetic()) && after.is_none_or(|c| !c.is_alphabetic())
    })
}

/// The currency of the merchant's country, where the receipt's text names one — or,
/// failing that, names a city of one in its address.
pub fn country_currency(text: &str) -> Option<&'static str> {
    let folded_text = fold(text);
    // A country alone on its line (`Portugal`) outweighs a word that only seems to name
    // one in another line (`16 uk. Dluga`, its `ul.` misread).
    let printed: Vec<&str> = text.lines().take(ADDRESS_LINES).collect();
    let top: Vec<&str> = folded_text.lines().take(ADDRESS_LINES).collect();
    let alone = top.iter().enumerate().find_map(|(i, line)| {
        // A code alone is the country's only below its address's city or postcode, or
        // in capitals below a line of words alone (`CH` under `Berm`, Bern misread): a
        // photo's background reads as short words of two letters too (`be`), seldom
        // capitals, and a photo's cut edge leaves a word's first two (`SE` of `SALE`
        // below a date).
        let below_address = i
            .checked_sub(1)
            .is_some_and(|above| postcode(top[above]) || city_currency(top[above]).is_some());
        let below_words = i.checked_sub(1).is_some_and(|above| {
            let words = top[above].trim();
            words.chars().filter(|c| c.is_alphabetic()).count() >= 3
                && words.chars().all(|c| c.is_alphabetic() || c == ' ')
        });
        let in_capitals = below_words
            && printed.get(i).is_some_and(|printed| {
                let code = printed.trim();
                code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase())
            });
        country_alone(line, below_address || in_capitals)
    });
    let named = || {
        folded_text.lines().find_map(|line| {
            COUNTRIES
                .iter()
                .find(|(name, _)| says(line, name))
                .map(|(_, code)| *code)
        })
    };
    alone
        .or_else(named)
        .or_else(|| {
            folded_text
                .lines()
                .take(ADDRESS_LINES)
                .find_map(city_currency)
        })
        .or_else(|| {
            folded_text
                .lines()
                .take(ADDRESS_LINES)
                .find_map(|line| country_misread(line).or_else(|| country_in_digits(line)))
        })
}

/// The currency of a country named alone on its line with letters OCR read as the digits
/// they look like (`U.5.4.`, `5chweiz`, `8rasil`, `Sv1zzera`).
fn country_in_digits(folded_line: &str) -> Option<&'static str> {
    let line = folded_line.trim();
    let digits = line.chars().filter(char::is_ascii_digit).count();
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    if digits == 0 || digits > 2 || letters == 0 {
        return None;
    }
    let as_letters = |one: char| -> String {
        line.chars()
            .map(|c| match c {
                '0' => 'o',
                '1' => one,
                '4' => 'a',
                '5' => 's',
                '8' => 'b',
                _ => c,
            })
            .collect()
    };
    ['i', 'l'].into_iter().find_map(|one| {
        let read = as_letters(one);
        let name = read.trim_matches(|c: char| !c.is_alphabetic());
        COUNTRIES
            .iter()
            .find(|(place, _)| *place == name)
            .map(|(_, code)| *code)
    })
}

/// Countries' ISO codes as addresses print them: alone on the line below the city
/// (`CH`) or before the postcode (`CH-8001 Zürich`). Codes that are also an American
/// state's or a Canadian province's (`CA`, `IN`) or a common word (`NO`) are left out.
const COUNTRY_CODES: &[(&str, &str)] = &[
    ("ch", "CHF"),
    ("de", "EUR"),
    ("at", "EUR"),
    ("fr", "EUR"),
    ("it", "EUR"),
    ("es", "EUR"),
    ("nl", "EUR"),
    ("be", "EUR"),
    ("pt", "EUR"),
    ("ie", "EUR"),
    ("se", "SEK"),
    ("dk", "DKK"),
    ("pl", "PLN"),
    ("cz", "CZK"),
    ("hu", "HUF"),
    ("gb", "GBP"),
    ("us", "USD"),
    ("au", "AUD"),
    ("nz", "NZD"),
    ("mx", "MXN"),
    ("br", "BRL"),
    ("jp", "JPY"),
];

/// The currency of the country an address's line names and nothing else: its name, or
/// its ISO code before the postcode, or alone where `below_address`.
fn country_alone(folded_line: &str, below_address: bool) -> Option<&'static str> {
    let line = folded_line.trim();
    let name = line.trim_matches(|c: char| !c.is_alphabetic());
    let coded = |(code, _): &&(&str, &str)| {
        (below_address && line == *code)
            || line
                .strip_prefix(code)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    COUNTRIES
        .iter()
        .find(|(place, _)| *place == name)
        .or_else(|| COUNTRY_CODES.iter().find(coded))
        .map(|(_, code)| *code)
}

/// Whether the line holds a postcode: a number of four or five digits.
fn postcode(folded_line: &str) -> bool {
    folded_line
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| (4..=5).contains(&run.len()))
}

/// The currency of a country named alone on an address's line with one letter misread,
/// dropped or added (`Brasl`, `Portugol`): a country's name of six letters or more, so
/// that no other word is that close to it.
fn country_misread(folded_line: &str) -> Option<&'static str> {
    let word: Vec<char> = folded_line.trim().chars().collect();
    if word.len() < 5 || !word.iter().all(|c| c.is_alphabetic()) {
        return None;
    }
    COUNTRIES
        .iter()
        .filter(|(name, _)| name.len() >= 6 && name.chars().all(char::is_alphabetic))
        .find(|(name, _)| one_edit_apart(&word, &name.chars().collect::<Vec<_>>()))
        .map(|(_, code)| *code)
}

/// Whether the folded line names a country or a city and nothing else (`Lisboa`,
/// `Schweiz`): an address's line, never a shop's name.
pub fn only_a_place(folded_line: &str) -> bool {
    let name = folded_line.trim_matches(|c: char| !c.is_alphabetic());
    COUNTRIES
        .iter()
        .chain(CITIES)
        .any(|(place, _)| *place == name)
}

/// The states of the United States and the provinces of Canada, as an address prints
/// them after its city ("Austin, TX 78701", "Halifax, NS B3H 1A1"); none is both.
const US_STATES: &[&str] = &[
    "al", "ak", "az", "ar", "ca", "co", "ct", "de", "fl", "ga", "hi", "id", "il", "in", "ia", "ks",
    "ky", "la", "me", "md", "ma", "mi", "mn", "ms", "mo", "mt", "ne", "nv", "nh", "nj", "nm", "ny",
    "nc", "nd", "oh", "ok", "or", "pa", "ri", "sc", "sd", "tn", "tx", "ut", "vt", "va", "wa", "wv",
    "wi", "wy", "dc",
];
const CANADIAN_PROVINCES: &[&str] = &[
    "ab", "bc", "mb", "nb", "nl", "ns", "nt", "nu", "on", "pe", "qc", "sk", "yt",
];
/// Australia's states as its addresses print them after the city, without a comma
/// ("Sydney NSW 2000"); those that are also American or Canadian codes are left out.
const AUSTRALIAN_STATES: &[&str] = &["nsw", "vic", "qld", "tas"];
/// The others, which name Australia only after one of its cities (`Perth WA`, where
/// `WA` alone is Washington's too).
const AUSTRALIAN_STATES_SHARED: &[&str] = &["wa", "sa", "nt", "act"];
/// Australian cities whose names other countries' cities have too (Perth in Scotland):
/// Australian only with their state after them.
const AUSTRALIAN_WITH_STATE: &[&str] = &["perth", "darwin"];

/// A state or province standing after a comma, with at most its postcode after it: the
/// city before it may be any.
fn region_currency(part: &str) -> Option<&'static str> {
    let mut words = part.split_whitespace();
    let code = words.next()?.trim_end_matches('.');
    if words.any(|w| !w.chars().any(|c| c.is_ascii_digit())) {
        return None;
    }
    state_currency(code)
}

/// The currency of the country an American state's or a Canadian province's code names.
fn state_currency(code: &str) -> Option<&'static str> {
    if US_STATES.contains(&code) {
        Some("USD")
    } else if CANADIAN_PROVINCES.contains(&code) {
        Some("CAD")
    } else {
        None
    }
}

/// Whether the address is in Québec: its province after the city (`Québec, QC`), or its
/// largest cities.
pub fn in_quebec(folded_text: &str) -> bool {
    folded_text.lines().take(ADDRESS_LINES).any(|line| {
        let province = line.split(',').skip(1).any(|part| {
            part.split_whitespace()
                .next()
                .is_some_and(|code| code.trim_end_matches('.') == "qc")
        });
        province || says(line, "montreal") || says(line, "quebec")
    })
}

/// A city standing as a part of an address line on its own, postcode aside ("75001
/// Paris", "London W1 2AB", "Seoul"): in a name ("Bar Roma") it says nothing of where.
/// Or, after its city, a state or province.
fn city_currency(line: &str) -> Option<&'static str> {
    let regions = line.split(',').skip(1).find_map(region_currency);
    regions.or_else(|| {
        line.split(',').find_map(|part| {
            let words: Vec<&str> = part
                .split_whitespace()
                .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()))
                .filter(|w| !w.is_empty())
                .collect();
            if words.len() >= 2 && words.last().is_some_and(|w| AUSTRALIAN_STATES.contains(w)) {
                return Some("AUD");
            }
            let named = |words: &[&str]| {
                let name = words.join(" ");
                CITIES
                    .iter()
                    .find(|(city, _)| *city == name)
                    .map(|(_, code)| *code)
            };
            // A known city with its state or province after it and no comma between
            // (`Denver CO`), where the two agree: alone, such a code may be another
            // country's province (`Milano MI`), and a city's name may be another
            // country's city's too (`London ON`).
            let regional = || match words.split_last() {
                Some((last, city)) if !city.is_empty() => {
                    let in_australia = AUSTRALIAN_STATES_SHARED.contains(last)
                        && (named(city) == Some("AUD")
                            || AUSTRALIAN_WITH_STATE.contains(&city.join(" ").as_str()));
                    let state = state_currency(last).filter(|code| named(city) == Some(*code));
                    in_australia.then_some("AUD").or(state)
                }
                _ => None,
            };
            named(&words).or_else(regional)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cldr_symbols_are_not_dollars() {
        assert_eq!(marks("Total CA$12.50"), [Mark::One("CAD")]);
        assert_eq!(marks("A$ 9.90"), [Mark::One("AUD")]);
        assert_eq!(marks("NZ$40.35"), [Mark::One("NZD")]);
        assert_eq!(marks("HK$ 88.00"), [Mark::One("HKD")]);
        assert_eq!(marks("MX$481.14"), [Mark::One("MXN")]);
        assert_eq!(marks("R$ 10,00"), [Mark::One("BRL")]);
        assert_eq!(marks("12,00 zł"), [Mark::One("PLN")]);
        assert_eq!(marks("Fr. 12.00"), [Mark::One("CHF")]);
        assert_eq!(marks("TOTAL  Fr.1163.11"), [Mark::One("CHF")]);
        assert_eq!(marks("Rs. 1,971.50"), [Mark::One("INR")]);
        assert_eq!(marks("Total  Rs 1.971,50"), [Mark::One("INR")]);
        assert_eq!(marks("Mrs Smith"), []);
        assert_eq!(
            marks("$12.00 CAD"),
            [Mark::One("CAD"), Mark::Shared(SHARED[0].1)]
        );
        assert_eq!(marks("Total $12.00"), [Mark::Shared(SHARED[0].1)]);
        assert_eq!(marks("123 kr"), [Mark::Shared(SHARED[3].1)]);
        assert_eq!(marks("TOTALE  sFr. 5,59"), [Mark::One("CHF")]);
        // `zł` as OCR reads it.
        assert_eq!(marks("Amount Due  519.35 zt"), [Mark::One("PLN")]);
        assert_eq!(marks("RAZEM  441,28 zi"), [Mark::One("PLN")]);
        assert_eq!(marks("Suma PLN  12,00 zl"), [Mark::One("PLN")]);
        assert_eq!(marks("Prezzi in EUR"), [Mark::One("EUR")]);
        assert_eq!(marks("Kraut 3,00"), []);
        assert_eq!(marks("Gift card"), []);
        assert_eq!(marks("TOTAL EUR  € 44,64"), [Mark::One("EUR")]);
    }

    #[test]
    fn a_code_damaged_in_one_letter_beside_the_amount_is_recognised() {
        assert_eq!(misread_code("Total  FUR 124.00"), Some("EUR"));
        assert_eq!(misread_code("TOTAL 12.30 USO"), Some("USD"));
        // Not beside an amount, not one letter from exactly one code, or a word.
        assert_eq!(misread_code("FUR coat  124.00"), None);
        assert_eq!(misread_code("Total  XYZ 12.00"), None);
        assert_eq!(misread_code("Total  Eur 12.00"), None);
    }

    #[test]
    fn countries_name_their_currency() {
        assert_eq!(country_currency("toronto, on, canada"), Some("CAD"));
        assert_eq!(country_currency("zurich, schweiz"), Some("CHF"));
        assert_eq!(country_currency("leeds, uk"), Some("GBP"));
        assert_eq!(
            country_currency("cafe\n16 uk. dkuga\n1100 lisboa\nportugal"),
            Some("EUR")
        );
        assert_eq!(country_currency("metzgerei\n3011 bern\nch"), Some("CHF"));
        assert_eq!(country_currency("baeckerei\nch-8001 zurich"), Some("CHF"));
        assert_eq!(country_currency("deli\n12 main st\nca"), None);
        // Two letters of a photo's background are no country's code.
        assert_eq!(country_currency("kiosk\nis en\nbe\nsr"), None);
        // A code in capitals below a city OCR misread is; a word's first two letters
        // below a date, where a photo cut the paper, are not.
        assert_eq!(country_currency("Seidl Drogerie\nBerm\nCH"), Some("CHF"));
        assert_eq!(country_currency("Prices  in\n23 Feb  202\nSE"), None);
        assert!(in_quebec("bistrot\n69294 quebec, qc\ncanada"));
        assert!(in_quebec("bistrot\nmontreal"));
        assert!(!in_quebec("maple books\ntoronto, on, canada"));
        assert_eq!(country_currency("shop\n12 main st"), None);
        assert_eq!(
            country_currency("grill\n113 calle mayor\nseoul"),
            Some("KRW")
        );
        assert_eq!(country_currency("cafe\n75001 paris"), Some("EUR"));
        assert_eq!(country_currency("pub\nlondon w1 2ab"), Some("GBP"));
        assert_eq!(
            country_currency("bar roma\n150 rue de la paix\nmumbai"),
            Some("INR")
        );
        assert_eq!(country_currency("bar roma\n12 main st"), None);
        // A state or province after the city, whichever the city.
        assert_eq!(country_currency("diner\naustin, tx"), Some("USD"));
        assert_eq!(country_currency("diner\nportland, or 97201"), Some("USD"));
        assert_eq!(country_currency("cafe\nhalifax, ns b3h 1a1"), Some("CAD"));
        assert_eq!(country_currency("cafe, or tea\n12 main st"), None);
        // An Australian state after the city, without a comma.
        assert_eq!(country_currency("diner\nsydney nsw"), Some("AUD"));
        assert_eq!(
            country_currency("diner\nsydney nsw, aust ralia"),
            Some("AUD")
        );
        assert_eq!(country_currency("diner\nnsw"), None);
        // A known city's state or province after it without a comma; not a state's code
        // after an unknown city.
        assert_eq!(country_currency("inn\n68 main st\ndenver co"), Some("USD"));
        assert_eq!(country_currency("inn\ndenver co 80202"), Some("USD"));
        // `WA` is Western Australia's after Perth, and Perth alone may be Scotland's.
        assert_eq!(country_currency("hardware\n51431 perth wa"), Some("AUD"));
        assert_eq!(country_currency("hardware\nperth"), None);
        assert_eq!(country_currency("hardware\nseattle wa"), Some("USD"));
        // A country's letters read as digits.
        assert_eq!(
            country_currency("kitchen\n84 kerkstraat\nU.5.4."),
            Some("USD")
        );
        assert_eq!(
            country_currency("caffetteria\nvia roma 3\nsv1zzera"),
            Some("CHF")
        );
        assert_eq!(country_currency("kitchen\n4 kerkstraat\n1917"), None);
        assert_eq!(country_currency("osteria\nvia po 3\nvarese mi"), None);
        // Nor a known city where the two disagree: Milan's province, or London, Ontario.
        assert_eq!(country_currency("osteria\nvia po 3\nmilano mi"), None);
        assert_eq!(country_currency("diner\nlondon on"), None);
        assert_eq!(
            country_currency("books\n81427 praba\nczech republic"),
            Some("CZK")
        );
        assert_eq!(country_currency("knihy\nceska republika"), Some("CZK"));
        assert_eq!(country_currency("bar\nlima, pe ru"), None);
        // The country outranks a city of the same name elsewhere.
        assert_eq!(
            country_currency("shop\nlondon, ontario, canada"),
            Some("CAD")
        );
        // A country alone on its line with a letter misread; not a word beside others,
        // nor a short name.
        assert_eq!(
            country_currency("mercearia\nri0 de janeiro\nbrasl"),
            Some("BRL")
        );
        assert_eq!(country_currency("papelaria\nportugol"), Some("EUR"));
        assert_eq!(country_currency("bar\nbrasl grill"), None);
        assert_eq!(country_currency("bar\nusb"), None);
    }

    #[test]
    fn a_sign_read_as_letters_names_its_currency() {
        assert_eq!(misread_sign("W"), Some("KRW"));
        assert_eq!(misread_sign("wW"), Some("KRW"));
        assert_eq!(misread_sign("As"), Some("AUD"));
        assert_eq!(misread_sign("CAS"), Some("CAD"));
        assert_eq!(misread_sign("HKS"), Some("HKD"));
        // A letter that is no sign's, or a `$` alone: no one currency.
        assert_eq!(misread_sign("A"), None);
        assert_eq!(misread_sign("S"), None);
    }
}
