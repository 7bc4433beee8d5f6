//! The Merkle tree of the audit log, as RFC 9162 (Certificate Transparency 2.0) §2.1
//! defines it: SHA-256, a leaf hashed as `0x00 ‖ bytes`, a node as `0x01 ‖ left ‖ right`,
//! a tree of `n` leaves split at the largest power of two below `n`.
//!
//! Pure: no storage. A tree is read through the hashes of its *perfect* subtrees — `2^level`
//! leaves starting at `index · 2^level` — which whoever stores the tree keeps; every hash
//! a proof needs is made of O(log n) of them. [`inclusion_ranges`] and
//! [`consistency_ranges`] say which ranges of leaves a proof is made of, [`subtrees`]
//! which perfect subtrees make up a range, and [`range_hash`] puts a range's hash
//! together; the `verify_*` functions check proofs with nothing but hashes.

use std::ops::Range;

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(bytes);
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The hash of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (for `n` > 1): where a tree of `n` leaves
/// splits.
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees `(level, index)` whose hashes make up the hash of `range`, from
/// left to right. `range` must be one the RFC's recursion meets: it starts at a multiple
/// of the largest power of two not above its length (every range the functions here
/// name does).
pub fn subtrees(range: Range<u64>) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let (mut start, end) = (range.start, range.end);
    while start < end {
        let len = end - start;
        // The largest perfect subtree starting here that fits.
        let level = 63 - len.leading_zeros();
        let level = level.min(start.trailing_zeros());
        out.push((level, start >> level));
        start += 1 << level;
    }
    out
}

/// The hash of `range` (non-empty), from the hashes of its perfect subtrees (`perfect`
/// answers `(level, index)` as [`subtrees`] named them).
pub fn range_hash(range: Range<u64>, perfect: &impl Fn(u32, u64) -> Hash) -> Hash {
    let len = range.end - range.start;
    if len.is_power_of_two() && range.start.is_multiple_of(len) {
        return perfect(len.trailing_zeros(), range.start / len);
    }
    let k = split(len);
    let left = range_hash(range.start..range.start + k, perfect);
    let right = range_hash(range.start + k..range.end, perfect);
    node_hash(&left, &right)
}

/// The root of a tree of `size` leaves.
pub fn root(size: u64, perfect: &impl Fn(u32, u64) -> Hash) -> Hash {
    match size {
        0 => empty_root(),
        _ => range_hash(0..size, perfect),
    }
}

/// The right edge of a growing tree: the hashes of the perfect subtrees its leaves make
/// up so far (those [`subtrees`] names for `0..size`). Enough to add leaves and to give
/// the root, so whoever extends a tree keeps this in memory and stores the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)` from left to right; levels strictly decrease.
    edge: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves, from the hashes of `subtrees(0..size)`.
    pub fn new(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        let levels: Vec<u32> = match size {
            0 => Vec::new(),
            _ => subtrees(0..size).into_iter().map(|(l, _)| l).collect(),
        };
        (levels.len() == hashes.len()).then(|| Self {
            size,
            edge: levels.into_iter().zip(hashes).collect(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a leaf's hash. `completed` hears of every perfect subtree above a single leaf
    /// that this leaf completes, as `(level, index, hash)`.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        self.size += 1;
        let mut level = 0;
        let mut hash = leaf;
        while let Some(&(top, left)) = self.edge.last() {
            if top != level {
                break;
            }
            self.edge.pop();
            level += 1;
            hash = node_hash(&left, &hash);
            completed(level, (self.size >> level) - 1, &hash);
        }
        self.edge.push((level, hash));
    }

    pub fn root(&self) -> Hash {
        let mut hashes = self.edge.iter().rev().map(|(_, h)| *h);
        match hashes.next() {
            None => empty_root(),
            Some(last) => hashes.fold(last, |right, left| node_hash(&left, &right)),
        }
    }
}

/// The ranges of leaves whose hashes, in order, prove leaf `index` in a tree of `size`
/// leaves (RFC 9162 §2.1.3.1); empty for a tree of one leaf.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<Range<u64>> {
    assert!(index < size, "leaf {index} is not in a tree of {size}");
    let mut path = Vec::new();
    let (mut start, mut end, mut m) = (0u64, size, index);
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            path.push(start + k..end);
            end = start + k;
        } else {
            path.push(start..start + k);
            start += k;
            m -= k;
        }
    }
    path.reverse();
    path
}

/// The ranges of leaves whose hashes, in order, prove that the tree of `old` leaves is a
/// prefix of the tree of `new` leaves (RFC 9162 §2.1.4.1), for 0 < `old` < `new`.
pub fn consistency_ranges(old: u64, new: u64) -> Vec<Range<u64>> {
    assert!(
        0 < old && old < new,
        "no consistency proof from {old} to {new}"
    );
    let mut proof = Vec::new();
    let (mut start, mut end, mut m, mut whole) = (0u64, new, old, true);
    while m != end - start {
        let k = split(end - start);
        if m <= k {
            proof.push(start + k..end);
            end = start + k;
        } else {
            proof.push(start..start + k);
            start += k;
            m -= k;
            whole = false;
        }
    }
    if !whole {
        proof.push(start..end);
    }
    proof.reverse();
    proof
}

/// Whether `proof` shows `leaf` at `index` in the tree of `size` leaves whose root is
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode, mut hash) = (index, size - 1, *leaf);
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            hash = node_hash(p, &hash);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            hash = node_hash(&hash, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && hash == *root
}

/// Whether `proof` shows the tree of `old` leaves with root `old_root` to be a prefix of
/// the tree of `new` leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 || old > new || proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree hash straight from RFC 9162's definition, over leaf hashes.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Perfect subtrees of `leaves`, as a store would keep them.
    fn perfect(leaves: &[Hash]) -> impl Fn(u32, u64) -> Hash + '_ {
        move |level, index| {
            let width = 1usize << level;
            let start = index as usize * width;
            mth(&leaves[start..start + width])
        }
    }

    fn hashes(ranges: &[Range<u64>], leaves: &[Hash]) -> Vec<Hash> {
        ranges
            .iter()
            .map(|r| range_hash(r.clone(), &perfect(leaves)))
            .collect()
    }

    #[test]
    fn hashes_are_the_rfcs() {
        // RFC 9162's empty tree and one-leaf tree, and the known SHA-256 of "".
        assert_eq!(
            empty_root()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let leaf = leaf_hash(b"");
        assert_eq!(
            leaf.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn a_root_from_subtrees_is_the_root_by_definition() {
        let all = leaves(70);
        for size in 0..=70u64 {
            let expected = mth(&all[..size as usize]);
            assert_eq!(root(size, &perfect(&all)), expected, "size {size}");
            if size > 0 {
                let parts = subtrees(0..size);
                assert!(parts.len() <= 64 - size.leading_zeros() as usize);
                assert_eq!(parts.iter().map(|(l, _)| 1u64 << l).sum::<u64>(), size);
            }
        }
    }

    #[test]
    fn every_leaf_is_proved_in_every_tree_and_nothing_else_is() {
        let all = leaves(41);
        for size in 1..=40u64 {
            let tree_root = mth(&all[..size as usize]);
            for index in 0..size {
                let proof = hashes(&inclusion_ranges(index, size), &all);
                let leaf = all[index as usize];
                assert!(
                    verify_inclusion(index, size, &leaf, &proof, &tree_root),
                    "leaf {index} of {size}"
                );
                let other = all[((index + 1) % size) as usize];
                if size > 1 {
                    assert!(!verify_inclusion(index, size, &other, &proof, &tree_root));
                }
                // Against the next tree's root (what a checkpoint of it signs) it fails.
                let next_root = mth(&all[..size as usize + 1]);
                assert!(!verify_inclusion(
                    index,
                    size + 1,
                    &leaf,
                    &proof,
                    &next_root
                ));
            }
        }
    }

    #[test]
    fn every_tree_is_proved_a_prefix_of_every_later_one() {
        let all = leaves(40);
        for new in 1..=40u64 {
            let new_root = mth(&all[..new as usize]);
            for old in 1..new {
                let old_root = mth(&all[..old as usize]);
                let proof = hashes(&consistency_ranges(old, new), &all);
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    "{old} → {new}"
                );
                let forged = mth(&leaves(old + 1)[1..]);
                assert!(!verify_consistency(old, new, &forged, &new_root, &proof));
            }
        }
    }

    #[test]
    fn a_frontier_grows_the_tree_and_names_each_completed_subtree() {
        let all = leaves(70);
        let mut frontier = Frontier::default();
        for (i, leaf) in all.iter().enumerate() {
            let mut completed = Vec::new();
            frontier.push(*leaf, |level, index, hash| {
                completed.push((level, index, *hash))
            });
            let size = i as u64 + 1;
            assert_eq!(frontier.root(), mth(&all[..size as usize]), "size {size}");
            for (level, index, hash) in completed {
                assert_eq!(hash, perfect(&all)(level, index));
                assert_eq!((index + 1) << level, size);
            }
            let hashes: Vec<Hash> = subtrees(0..size)
                .into_iter()
                .map(|(l, x)| perfect(&all)(l, x))
                .collect();
            assert_eq!(Frontier::new(size, hashes), Some(frontier.clone()));
        }
    }

    #[test]
    fn a_changed_leaf_changes_the_root() {
        let mut all = leaves(9);
        let before = mth(&all);
        all[4] = leaf_hash(b"changed");
        assert_ne!(mth(&all), before);
    }
}
