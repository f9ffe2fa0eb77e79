//! The RFC 6962 Merkle tree over ledger entries, as C2SP `tlog-checkpoint` uses it.
//!
//! A leaf is `SHA-256(0x00 || entry canonical bytes)`, an interior node is
//! `SHA-256(0x01 || left || right)`, and the root of `n` leaves splits them at the largest
//! power of two below `n` (RFC 6962 section 2.1). The root of the empty tree is `SHA-256("")`.

use sha2::{Digest as _, Sha256};

/// The leaf hash of an entry: `SHA-256(0x00 || canonical bytes)`.
pub fn leaf_hash(entry_canonical_bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry_canonical_bytes);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut block = [0u8; 65];
    block[0] = 0x01;
    block[1..33].copy_from_slice(left);
    block[33..].copy_from_slice(right);
    Sha256::digest(block).into()
}

/// The RFC 6962 Merkle tree hash (MTH) of `leaves`, which are leaf hashes.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => Sha256::digest([]).into(),
        [leaf] => *leaf,
        _ => {
            // The largest power of two strictly below the length: the top bit of length - 1.
            let split = 1 << (usize::BITS - 1 - (leaves.len() - 1).leading_zeros());
            node_hash(&root(&leaves[..split]), &root(&leaves[split..]))
        }
    }
}

/// A Merkle tree that is only appended to, kept as its compact range: the roots of the
/// perfect subtrees that make up its leaves, one per set bit of its size, so it holds
/// O(log n) hashes and never the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    subtrees: Vec<[u8; 32]>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf_hash: [u8; 32]) {
        let mut hash = leaf_hash;
        // Each trailing one bit of the old size is a subtree of the new leaf's size that now
        // has a right sibling of equal size: merge them.
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self
                .subtrees
                .pop()
                .expect("one subtree per set bit of the size");
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.subtrees.push(hash);
        self.size += 1;
    }

    /// The RFC 6962 root of the leaves pushed so far.
    pub fn root(&self) -> [u8; 32] {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&last) = subtrees.next() else {
            return Sha256::digest([]).into();
        };
        subtrees.fold(last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The RFC 6962 test vectors (as in Go's `golang.org/x/mod/sumdb/tlog` and the Certificate
    /// Transparency code): the roots of the first 1..=8 of these leaves.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn rfc6962_vectors() {
        let leaves: Vec<[u8; 32]> = LEAVES
            .iter()
            .map(|leaf| leaf_hash(&hex::decode(leaf).expect("hex")))
            .collect();
        let mut tree = Tree::new();
        for (index, expected) in ROOTS.iter().enumerate() {
            tree.push(leaves[index]);
            assert_eq!(
                hex::encode(root(&leaves[..=index])),
                *expected,
                "root of {}",
                index + 1
            );
            assert_eq!(hex::encode(tree.root()), *expected, "tree of {}", index + 1);
            assert_eq!(tree.size(), index as u64 + 1);
        }
    }

    #[test]
    fn empty_tree() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(hex::encode(root(&[])), empty);
        assert_eq!(hex::encode(Tree::new().root()), empty);
    }

    proptest! {
        #[test]
        fn tree_root_equals_root(size in 0usize..1100, seed in any::<u8>()) {
            let leaves: Vec<[u8; 32]> = (0..size)
                .map(|index| leaf_hash(&[seed, (index % 251) as u8, (index / 251) as u8]))
                .collect();
            let mut tree = Tree::new();
            for leaf in &leaves {
                tree.push(*leaf);
            }
            prop_assert_eq!(tree.size(), size as u64);
            prop_assert_eq!(tree.root(), root(&leaves));
            prop_assert_eq!(tree.subtrees.len(), size.count_ones() as usize);
        }
    }
}
