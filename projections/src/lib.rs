//! Read models: the tables queries are answered from, the projectors that build them
//! from the events, and the queries themselves.
//!
//! A projector reads events in the store's global order and writes each batch's rows and
//! its checkpoint in one transaction, so a crash neither loses nor repeats an event's
//! effect. Read models are disposable: they can be rebuilt from the events at any time.

pub mod checkpoint;
pub mod expenses;
pub mod rebuild;
pub mod receipts;
pub mod runner;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use checkpoint::{Checkpoints, ConsistencyError};

/// Rows per page while gathering every row of a paged query.
const ALL_PAGE: usize = 500;

/// Every row of a paged query: `page(cursor, limit)` answers a page and where the next
/// one starts (none after the last).
async fn all_pages<T, C, E, F, Fut>(mut page: F) -> Result<Vec<T>, E>
where
    F: FnMut(Option<C>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<C>), E>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (rows, next) = page(cursor, ALL_PAGE).await?;
        all.extend(rows);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}
pub use runner::{Projection, Projector};
