//! What tests of the read models and of the crates above them share.
//!
//! Compiled only with the `testing` feature, which test code turns on.

use expensewise_infra::{Database, Vault};

/// Checks that every read model equals what a rebuild from the event store makes of the
/// events it has read: nothing missing, nothing doubled. Returns how many read models.
pub async fn assert_read_models_equal_a_rebuild(db: &Database, vault: &Vault) -> usize {
    let models = crate::status::read_models();
    for model in &models {
        let verified = crate::rebuild::rebuild(
            db,
            vault,
            model.live.as_ref(),
            model.shadow.as_ref(),
            false,
            &|_| {},
        )
        .await
        .expect("verify the read model");
        assert!(
            verified.identical(),
            "the {} read model equals a rebuild: {verified:?}",
            model.name
        );
    }
    models.len()
}

/// Rebuilds every read model and swaps it in; returns each one's report.
pub async fn rebuild_all(
    db: &Database,
    vault: &Vault,
) -> Vec<(&'static str, crate::rebuild::Report)> {
    let mut reports = Vec::new();
    for model in crate::status::read_models() {
        let report = crate::rebuild::rebuild(
            db,
            vault,
            model.live.as_ref(),
            model.shadow.as_ref(),
            true,
            &|_| {},
        )
        .await
        .expect("rebuild the read model");
        reports.push((model.name, report));
    }
    reports
}
