//! What the audit log hashes of each event (docs/audit-log.md): the leaf of the Merkle
//! tree (`crate::merkle`) is the canonical JSON (`crate::canonical`) of the event as it
//! is stored — personal fields sealed — so that erasing a person, which destroys keys
//! and rewrites nothing, leaves every leaf as it was.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::signed_note::{Checkpoint, NoteVerifier};

/// An event as stored, the fields a leaf is made of.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    /// As stored: `{"<event type>": {fields}}`, personal fields sealed.
    pub payload: &'a Value,
    pub metadata: &'a Value,
    pub recorded_at: DateTime<Utc>,
}

/// The bytes of the event's leaf: the canonical JSON (RFC 8785) of an object of its
/// fields, the time of recording in RFC 3339, UTC, to the microsecond. (The event id is
/// made of the aggregate type, id and sequence, so it is not repeated.)
///
/// Written member by member, in the canonical order of their names, rather than through
/// an object of them: that would copy the payload first, and verification hashes every
/// event of the store.
pub fn leaf_bytes(event: &StoredEvent) -> Vec<u8> {
    use crate::canonical::{string, write};
    let mut out = String::with_capacity(512);
    out.push_str("{\"aggregate_id\":");
    string(event.aggregate_id, &mut out);
    out.push_str(",\"aggregate_type\":");
    string(event.aggregate_type, &mut out);
    out.push_str(",\"event_type\":");
    string(event.event_type, &mut out);
    out.push_str(",\"event_version\":");
    string(event.event_version, &mut out);
    out.push_str(",\"metadata\":");
    write(event.metadata, &mut out);
    out.push_str(",\"payload\":");
    write(event.payload, &mut out);
    out.push_str(",\"recorded_at\":");
    let recorded_at = event
        .recorded_at
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    string(&recorded_at, &mut out);
    out.push_str(",\"sequence\":");
    write(&json!(event.sequence), &mut out);
    out.push('}');
    out.into_bytes()
}

/// The event's leaf hash in the tree: SHA-256 of `0x00` and its leaf bytes.
pub fn event_leaf_hash(event: &StoredEvent) -> Hash {
    leaf_hash(&leaf_bytes(event))
}

/// What the notary recorded for one leaf: its hash and, where known, whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotarizedLeaf {
    pub hash: Hash,
    pub event_id: Option<Uuid>,
}

/// An event as the store holds it now, met in the store's global order.
#[derive(Debug, Clone, Copy)]
pub struct PresentEvent {
    pub event_id: Uuid,
    /// The leaf the notary gave it; none if the notary never saw it.
    pub leaf_index: Option<u64>,
    /// Its leaf hash, computed from what is stored now.
    pub leaf_hash: Hash,
}

/// What kind of divergence `audit verify` found (docs/audit-log.md, "Verifying").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A checkpoint whose signature does not verify with the log's public key.
    BadSignature,
    /// A checkpoint whose root is not the root of the recorded leaves.
    TreeMismatch,
    /// An event whose stored form no longer hashes to its leaf.
    Changed,
    /// A leaf whose event is gone.
    Missing,
    /// An event the log never recorded, amid events it did.
    Inserted,
    /// An event out of the order the log recorded.
    Reordered,
    /// Leaves gone from the end: the first of them.
    Truncated,
    /// A receipt file whose SHA-256 is not the one its upload recorded.
    ReceiptChanged,
    /// A receipt file that is gone while its upload is not erased.
    ReceiptMissing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub kind: Kind,
    /// The leaf concerned: an inserted event's is the leaf it stands in front of.
    pub leaf_index: Option<u64>,
    pub event_id: Option<Uuid>,
    /// The checkpoint concerned (bad signatures, mismatched trees).
    pub tree_size: Option<u64>,
}

impl Divergence {
    pub fn at(kind: Kind, leaf_index: u64, event_id: Option<Uuid>) -> Self {
        Self {
            kind,
            leaf_index: Some(leaf_index),
            event_id,
            tree_size: None,
        }
    }

    fn checkpoint(kind: Kind, tree_size: Option<u64>) -> Self {
        Self {
            kind,
            leaf_index: None,
            event_id: None,
            tree_size,
        }
    }

    /// Checkpoints first, by size; then by leaf, kind and event: one order whoever
    /// verifies.
    fn order_key(&self) -> (bool, u64, u64, Kind, Option<Uuid>) {
        (
            self.tree_size.is_none(),
            self.tree_size.unwrap_or(0),
            self.leaf_index.unwrap_or(u64::MAX),
            self.kind,
            self.event_id,
        )
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// "clean" or "tampered".
    pub verdict: &'static str,
    /// The largest tree a verified checkpoint signs (0 if none).
    pub signed_size: u64,
    pub checkpoints: u64,
    pub leaves: u64,
    pub events: u64,
    /// Events after the last one the notary recorded: not yet in the log.
    pub pending: u64,
    pub divergences: Vec<Divergence>,
}

impl Report {
    /// Adds what was found beside the log (receipt files), keeping the order.
    pub fn add(&mut self, divergence: Divergence) {
        self.divergences.push(divergence);
        self.divergences.sort_by_key(Divergence::order_key);
        self.verdict = "tampered";
    }
}

/// Checks a store against its log (docs/audit-log.md, "Verifying"): the notarized leaves
/// against every signed checkpoint, and the events as stored now, in the store's order,
/// against the leaves. Feed it the events one by one ([`Verification::event`]), then
/// [`Verification::finish`].
pub struct Verification {
    leaves: Vec<NotarizedLeaf>,
    /// Each notarized event's leaf, in the store's order.
    order: Vec<(u64, Uuid)>,
    seen: Vec<bool>,
    /// Events the notary never saw, with how many notarized events came before them.
    unrecorded: Vec<(u64, Uuid)>,
    divergences: Vec<Divergence>,
    events: u64,
}

impl Verification {
    pub fn new(leaves: Vec<NotarizedLeaf>) -> Self {
        let seen = vec![false; leaves.len()];
        Self {
            leaves,
            order: Vec::new(),
            seen,
            unrecorded: Vec::new(),
            divergences: Vec::new(),
            events: 0,
        }
    }

    /// The next event in the store's order.
    pub fn event(&mut self, event: PresentEvent) {
        self.events += 1;
        let recorded = event
            .leaf_index
            .filter(|&i| i < self.leaves.len() as u64 && !self.seen[i as usize]);
        let Some(index) = recorded else {
            self.unrecorded
                .push((self.order.len() as u64, event.event_id));
            return;
        };
        self.seen[index as usize] = true;
        if self.leaves[index as usize].hash != event.leaf_hash {
            self.divergences
                .push(Divergence::at(Kind::Changed, index, Some(event.event_id)));
        }
        self.order.push((index, event.event_id));
    }

    /// Checks the leaves against `checkpoints` (signed notes) and ends the verification.
    /// A checkpoint counts as signed if one of `verifiers` signed it for its own name (a
    /// log whose key was changed is verified with the keys of each era).
    pub fn finish(mut self, checkpoints: &[String], verifiers: &[NoteVerifier]) -> Report {
        let mut signed = Vec::new();
        for note in checkpoints {
            match verifiers
                .iter()
                .find_map(|verifier| Checkpoint::open(note, verifier).ok())
            {
                Some(checkpoint) => signed.push(checkpoint),
                None => {
                    // The size is named as the note claims it, unverified, to find it.
                    let claimed = note.split('\n').nth(1).and_then(|s| s.parse::<u64>().ok());
                    self.divergences
                        .push(Divergence::checkpoint(Kind::BadSignature, claimed));
                }
            }
        }
        signed.sort_by_key(|c| c.size);
        let signed_size = signed.last().map_or(0, |c| c.size);
        let mut frontier = Frontier::default();
        let mut next = signed.iter().peekable();
        while next.peek().is_some_and(|c| c.size == 0) {
            next.next();
        }
        for leaf in &self.leaves {
            frontier.push(leaf.hash, |_, _, _| {});
            while let Some(checkpoint) = next.next_if(|c| c.size == frontier.size()) {
                if checkpoint.root != frontier.root() {
                    self.divergences.push(Divergence::checkpoint(
                        Kind::TreeMismatch,
                        Some(checkpoint.size),
                    ));
                }
            }
        }
        let recorded = self.leaves.len() as u64;
        let present: Vec<u64> = (0..recorded).filter(|&i| self.seen[i as usize]).collect();
        // In the log's order, the k-th notarized event met must hold the k-th leaf of
        // those present; deleted events leave gaps, not shifts.
        for (rank, (index, event_id)) in self.order.iter().enumerate() {
            if present[rank] != *index {
                self.divergences
                    .push(Divergence::at(Kind::Reordered, *index, Some(*event_id)));
            }
        }
        let mut pending = 0;
        for (before, event_id) in &self.unrecorded {
            match present.get(*before as usize) {
                Some(&index) => {
                    self.divergences
                        .push(Divergence::at(Kind::Inserted, index, Some(*event_id)))
                }
                None => pending += 1,
            }
        }
        // Leaves whose event is named are expected among the events; a leaf withheld (an
        // organization's bundle names only its own) is not.
        let last_present = present.last().map_or(0, |i| i + 1);
        let gone = (0..recorded)
            .filter(|&i| !self.seen[i as usize] && self.leaves[i as usize].event_id.is_some());
        let mut tail = None;
        for index in gone {
            let event_id = self.leaves[index as usize].event_id;
            if index < last_present {
                self.divergences
                    .push(Divergence::at(Kind::Missing, index, event_id));
            } else {
                tail = Some((index, event_id));
                break;
            }
        }
        // Checkpoints signing more leaves than are recorded: leaves gone as well.
        let tail = tail.or((recorded < signed_size).then_some((recorded, None)));
        if let Some((index, event_id)) = tail {
            self.divergences
                .push(Divergence::at(Kind::Truncated, index, event_id));
        }
        self.divergences.sort_by_key(Divergence::order_key);
        Report {
            verdict: if self.divergences.is_empty() {
                "clean"
            } else {
                "tampered"
            },
            signed_size,
            checkpoints: checkpoints.len() as u64,
            leaves: recorded,
            events: self.events,
            pending,
            divergences: self.divergences,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The worked example of docs/audit-log.md: the bytes and the hash are the contract
    /// an auditor's verifier is written against, so they are pinned here.
    #[test]
    fn the_documented_example_hashes_as_documented() {
        let payload = json!({"ExpenseSubmitted": {"resubmission": false,
            "submitted_at": "2026-03-02T10:15:00Z"}});
        let metadata = json!({"organization_id": "6a1f9c0e-2b7d-4e15-9a43-1c2d3e4f5a6b",
            "actor_id": "0b7e3c1a-5d2f-4a86-b9c0-7e1d2c3b4a59"});
        let event = StoredEvent {
            aggregate_type: "expense",
            aggregate_id: "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c",
            sequence: 2,
            event_type: "ExpenseSubmitted",
            event_version: "1.0",
            payload: &payload,
            metadata: &metadata,
            recorded_at: Utc
                .with_ymd_and_hms(2026, 3, 2, 10, 15, 0)
                .unwrap()
                .checked_add_signed(chrono::Duration::microseconds(123_456))
                .unwrap(),
        };
        let bytes = String::from_utf8(leaf_bytes(&event)).unwrap();
        assert_eq!(
            bytes,
            "{\"aggregate_id\":\"3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c\",\
             \"aggregate_type\":\"expense\",\"event_type\":\"ExpenseSubmitted\",\
             \"event_version\":\"1.0\",\"metadata\":{\"actor_id\":\
             \"0b7e3c1a-5d2f-4a86-b9c0-7e1d2c3b4a59\",\"organization_id\":\
             \"6a1f9c0e-2b7d-4e15-9a43-1c2d3e4f5a6b\"},\"payload\":{\"ExpenseSubmitted\":\
             {\"resubmission\":false,\"submitted_at\":\"2026-03-02T10:15:00Z\"}},\
             \"recorded_at\":\"2026-03-02T10:15:00.123456Z\",\"sequence\":2}"
        );
        assert_eq!(hex(&event_leaf_hash(&event)), DOCUMENTED_HASH);
    }

    /// docs/audit-log.md, "A worked example".
    const DOCUMENTED_HASH: &str =
        "7502ccc01efdeee7f51a9dc07c9d9aabdde8584ce4ea5f04bb18fc1a7aa4cfcc";

    mod verifying {
        use super::super::*;
        use crate::merkle::{leaf_hash, Frontier};
        use crate::signed_note::{Checkpoint, NoteSigner, NoteVerifier};

        const N: u64 = 10;

        fn id(i: u64) -> Uuid {
            Uuid::from_u128(i as u128 + 1)
        }

        fn hash(i: u64) -> Hash {
            leaf_hash(&i.to_be_bytes())
        }

        fn signer() -> NoteSigner {
            NoteSigner::new("test/log", &[1; 32]).unwrap()
        }

        /// A log of N leaves, with checkpoints at 4 and N signed by `signer`.
        fn log(signer: &NoteSigner) -> (Vec<NotarizedLeaf>, Vec<String>) {
            let leaves: Vec<NotarizedLeaf> = (0..N)
                .map(|i| NotarizedLeaf {
                    hash: hash(i),
                    event_id: Some(id(i)),
                })
                .collect();
            let mut frontier = Frontier::default();
            let mut notes = Vec::new();
            for leaf in &leaves {
                frontier.push(leaf.hash, |_, _, _| {});
                if [4, N].contains(&frontier.size()) {
                    let checkpoint = Checkpoint {
                        origin: "test/log".into(),
                        size: frontier.size(),
                        root: frontier.root(),
                    };
                    notes.push(signer.sign(&checkpoint.text()));
                }
            }
            (leaves, notes)
        }

        /// Verifies the events `(event, leaf, hash)` of the untouched log, in the order
        /// given, against it.
        fn verify(events: &[(u64, Option<u64>, Hash)], notes: Option<Vec<String>>) -> Report {
            let (leaves, ours) = log(&signer());
            let mut verification = Verification::new(leaves);
            for &(event, leaf_index, leaf_hash) in events {
                verification.event(PresentEvent {
                    event_id: id(event),
                    leaf_index,
                    leaf_hash,
                });
            }
            let verifier = NoteVerifier::parse(&signer().verifier_key()).unwrap();
            verification.finish(&notes.unwrap_or(ours), &[verifier])
        }

        fn untouched() -> Vec<(u64, Option<u64>, Hash)> {
            (0..N).map(|i| (i, Some(i), hash(i))).collect()
        }

        fn kinds(report: &Report) -> Vec<(Kind, Option<u64>, Option<Uuid>)> {
            report
                .divergences
                .iter()
                .map(|d| (d.kind, d.leaf_index, d.event_id))
                .collect()
        }

        #[test]
        fn an_untouched_store_verifies_clean_with_what_is_pending() {
            let mut events = untouched();
            events.push((N, None, hash(N)));
            let report = verify(&events, None);
            assert_eq!(report.verdict, "clean", "{report:?}");
            assert_eq!((report.signed_size, report.pending), (N, 1));
        }

        #[test]
        fn each_kind_of_tampering_is_named_at_its_leaf() {
            let mut changed = untouched();
            changed[3].2 = hash(99);
            assert_eq!(
                kinds(&verify(&changed, None)),
                [(Kind::Changed, Some(3), Some(id(3)))]
            );
            let mut deleted = untouched();
            deleted.remove(5);
            assert_eq!(
                kinds(&verify(&deleted, None)),
                [(Kind::Missing, Some(5), Some(id(5)))]
            );
            let mut swapped = untouched();
            swapped.swap(2, 7);
            assert_eq!(
                kinds(&verify(&swapped, None)),
                [
                    (Kind::Reordered, Some(2), Some(id(2))),
                    (Kind::Reordered, Some(7), Some(id(7)))
                ]
            );
            let mut forged = untouched();
            forged.insert(6, (42, None, hash(42)));
            assert_eq!(
                kinds(&verify(&forged, None)),
                [(Kind::Inserted, Some(6), Some(id(42)))]
            );
            let truncated: Vec<_> = untouched().into_iter().take(8).collect();
            assert_eq!(
                kinds(&verify(&truncated, None)),
                [(Kind::Truncated, Some(8), Some(id(8)))]
            );
        }

        #[test]
        fn a_checkpoint_signed_by_another_key_or_over_other_leaves_is_named() {
            let (_, mut notes) = log(&signer());
            let other = NoteSigner::new("test/log", &[2; 32]).unwrap();
            notes[1] = log(&other).1[1].clone();
            let report = verify(&untouched(), Some(notes));
            assert_eq!(report.divergences.len(), 1);
            assert_eq!(report.divergences[0].kind, Kind::BadSignature);
            assert_eq!(report.divergences[0].tree_size, Some(N));

            // With the other key trusted too (a log whose key was changed), it counts.
            let (_, mut notes) = log(&signer());
            notes[1] = log(&other).1[1].clone();
            let (leaves, _) = log(&signer());
            let mut verification = Verification::new(leaves);
            for (event, leaf_index, leaf_hash) in untouched() {
                verification.event(PresentEvent {
                    event_id: id(event),
                    leaf_index,
                    leaf_hash,
                });
            }
            let keys = [signer(), other].map(|k| NoteVerifier::parse(&k.verifier_key()).unwrap());
            assert_eq!(verification.finish(&notes, &keys).verdict, "clean");

            let forged_root = Checkpoint {
                origin: "test/log".into(),
                size: 4,
                root: hash(0),
            };
            let notes = vec![signer().sign(&forged_root.text())];
            let report = verify(&untouched(), Some(notes));
            assert_eq!(report.divergences[0].kind, Kind::TreeMismatch);
            assert_eq!(report.divergences[0].tree_size, Some(4));
        }
    }

    #[test]
    fn the_leaf_is_the_canonical_form_of_the_events_object() {
        let payload = json!({"B": {"z": "tab\there", "a": [1.5, 2e21, null]}, "é": "\u{1}"});
        let metadata = json!({"organization_id": "x", "actor_id": null});
        let event = StoredEvent {
            aggregate_type: "exp\"ense",
            aggregate_id: "a\\b",
            sequence: 9_007_199_254_740_993,
            event_type: "B",
            event_version: "1.0",
            payload: &payload,
            metadata: &metadata,
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        let object = json!({
            "aggregate_type": event.aggregate_type, "aggregate_id": event.aggregate_id,
            "sequence": event.sequence, "event_type": event.event_type,
            "event_version": event.event_version, "payload": payload, "metadata": metadata,
            "recorded_at": "2026-01-01T00:00:00.000000Z",
        });
        assert_eq!(
            String::from_utf8(leaf_bytes(&event)).unwrap(),
            crate::canonical::to_string(&object)
        );
    }

    #[test]
    fn anything_changed_changes_the_leaf() {
        let payload = json!({"ExpenseDeleted": {}});
        let metadata = json!({});
        let base = StoredEvent {
            aggregate_type: "expense",
            aggregate_id: "a",
            sequence: 1,
            event_type: "ExpenseDeleted",
            event_version: "1.0",
            payload: &payload,
            metadata: &metadata,
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        let other_payload = json!({"ExpenseDeleted": {"x": 1}});
        let changed = [
            StoredEvent {
                sequence: 2,
                ..base
            },
            StoredEvent {
                aggregate_id: "b",
                ..base
            },
            StoredEvent {
                payload: &other_payload,
                ..base
            },
            StoredEvent {
                recorded_at: base.recorded_at + chrono::Duration::microseconds(1),
                ..base
            },
        ];
        for event in changed {
            assert_ne!(event_leaf_hash(&event), event_leaf_hash(&base), "{event:?}");
        }
    }
}
