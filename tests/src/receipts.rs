//! Receipt images drawn for a test.

use serde_json::Value;
use uuid::Uuid;

/// Draws a receipt image with Pillow (`tests/support/draw_receipt.py`); `spec` is the
/// script's JSON (lines, font, size, rotation, blur, noise, uneven light, format).
pub fn draw_receipt(spec: &Value) -> Vec<u8> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/draw_receipt.py");
    let output = std::env::temp_dir().join(format!("expensewise-receipt-{}", Uuid::new_v4()));
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .arg(&output)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (with Pillow; ./scripts/test.sh installs it): {e}")
        });
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(spec.to_string().as_bytes())
            .expect("write the receipt spec");
    }
    assert!(
        child.wait().expect("draw a receipt").success(),
        "drawing the receipt failed"
    );
    let bytes = std::fs::read(&output).expect("the drawn receipt");
    let _ = std::fs::remove_file(&output);
    bytes
}
