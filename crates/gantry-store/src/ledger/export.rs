//! The ledger export file, and the verification of a ledger.
//!
//! # Format
//!
//! An export is JSON Lines (UTF-8, one JSON object per line, `\n` line ends):
//!
//! 1. a header: `{"gantry_ledger":1,"origin":"<log origin>","key":"<verifier key>"}`, where the
//!    key is in the note verifier key format ([`VerifierKey::to_vkey_string`]);
//! 2. one line `{"entry":{...}}` per entry, in sequence order from 1, with no gaps; the
//!    writer puts each entry's canonical bytes there, so the line holds exactly what the
//!    entry's hash covers (a reader does not depend on it: it canonicalizes what it reads);
//! 3. interleaved with them, `{"checkpoint":"<signed note>"}` lines: a checkpoint of size `n`
//!    comes right after entry `n` (a checkpoint of size 0 right after the header).
//!
//! A line has exactly one of `entry` and `checkpoint`, and nothing else; an entry has no
//! field that [`Entry`] lacks. Anything not covered by a hash or a signature is refused
//! rather than ignored, so what a reader of the file sees is what was verified. A later
//! format that needs more gets a new `gantry_ledger` version. (Unknown header fields are
//! ignored: of the header, only the origin, which every checkpoint must repeat, and the key
//! are used.)
//!
//! # Verification
//!
//! [`verify_export`] reads an export once, in constant memory apart from the compact Merkle
//! tree, and checks that the sequence numbers run 1, 2, 3… without gaps, that each entry's
//! `previous` is the hash of the entry before it ([`GENESIS`] for the first), and that each
//! checkpoint is signed by the trusted key, has the export's origin, and has the Merkle root
//! of the entries before it. It stops at the first problem, in file order, and names it.
//!
//! Entries after the last checkpoint are chained but not signed: [`VerifySummary`] says how
//! many entries the last checkpoint covers, and [`VerifySummary::require_signed`] refuses an
//! export in which any entry is left uncovered (no checkpoint at all, or an entry appended
//! after the last one), naming the first such entry. A caller that holds the key and wants
//! to know who wrote the whole file asks for it; one that reads a live ledger may accept an
//! unsigned tail and report its length ([`VerifySummary::unsigned_entries`]).
//!
//! The work is split over two threads: the calling thread reads, parses and canonicalizes
//! the lines, and a second one hashes, chains and checks them, in file order. Batches of
//! lines pass between them through a bounded queue, so memory stays constant.

use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::sync::mpsc;
use std::thread;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::canonical::write_string;
use super::entry::{Entry, EntryRef, GENESIS};
use super::merkle::{Tree, leaf_hash};
use super::note::{self, NoteError, VerifierKey};

/// The format version this module writes and reads.
const FORMAT_VERSION: u64 = 1;

/// Writes an export, one line at a time; see the [module documentation](self) for the
/// format.
///
/// Each line is written with one `write_all`: give it a buffered writer.
#[derive(Debug)]
pub struct ExportWriter<W: Write> {
    writer: W,
    entries: u64,
    line: Vec<u8>,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export of the log `origin`, whose checkpoints `key` verifies, by writing the
    /// header.
    pub fn new(writer: W, origin: &str, key: &VerifierKey) -> io::Result<Self> {
        #[derive(Serialize)]
        struct Header<'a> {
            gantry_ledger: u64,
            origin: &'a str,
            key: &'a str,
        }
        let mut line = serde_json::to_vec(&Header {
            gantry_ledger: FORMAT_VERSION,
            origin,
            key: &key.to_vkey_string(),
        })?;
        line.push(b'\n');
        let mut export = Self {
            writer,
            entries: 0,
            line,
        };
        export.writer.write_all(&export.line)?;
        Ok(export)
    }

    /// Writes the next entry, whose sequence number must follow the last one written.
    pub fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        if entry.sequence != self.entries + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "entry {} written where entry {} was expected",
                    entry.sequence,
                    self.entries + 1
                ),
            ));
        }
        self.line.clear();
        self.line.extend_from_slice(b"{\"entry\":");
        entry.write_canonical(&mut self.line);
        self.line.extend_from_slice(b"}\n");
        self.writer.write_all(&self.line)?;
        self.entries += 1;
        Ok(())
    }

    /// Writes a signed checkpoint, whose size must be the number of entries written so far.
    /// Its signature is not checked here.
    pub fn checkpoint(&mut self, note: &str) -> io::Result<()> {
        match note::unverified_size(note) {
            Some(size) if size == self.entries => {}
            size => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "a checkpoint of size {} cannot follow entry {}",
                        size.map_or_else(|| "(unreadable)".to_owned(), |size| size.to_string()),
                        self.entries
                    ),
                ));
            }
        }
        self.line.clear();
        self.line.extend_from_slice(b"{\"checkpoint\":");
        write_string(&mut self.line, note);
        self.line.extend_from_slice(b"}\n");
        self.writer.write_all(&self.line)
    }

    /// How many entries have been written.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Flushes the writer and returns it.
    pub fn finish(mut self) -> io::Result<W> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

/// Writes a whole export: the header, then `entries` (in sequence order, from 1) with each of
/// `checkpoints` (in size order) placed after the entry its size names.
pub fn write_export<W: Write>(
    writer: W,
    origin: &str,
    key: &VerifierKey,
    entries: impl IntoIterator<Item = Entry>,
    checkpoints: impl IntoIterator<Item = String>,
) -> io::Result<()> {
    let mut export = ExportWriter::new(writer, origin, key)?;
    let mut checkpoints = checkpoints.into_iter().peekable();
    let mut write_due_checkpoints = |export: &mut ExportWriter<W>| -> io::Result<()> {
        while let Some(note) =
            checkpoints.next_if(|note| note::unverified_size(note) <= Some(export.entries()))
        {
            export.checkpoint(&note)?;
        }
        Ok(())
    };
    write_due_checkpoints(&mut export)?;
    for entry in entries {
        export.entry(&entry)?;
        write_due_checkpoints(&mut export)?;
    }
    if checkpoints.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a checkpoint is larger than the {} entries written",
                export.entries()
            ),
        ));
    }
    export.finish().map(drop)
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// The log origin named in the header (and in every checkpoint).
    pub origin: String,
    /// How many entries the export holds.
    pub entries: u64,
    /// How many checkpoints it holds.
    pub checkpoints: u64,
    /// How many entries the last checkpoint covers: the ones after it are chained but not
    /// signed.
    pub signed_entries: u64,
    /// The line of the first entry no checkpoint covers (entry `signed_entries + 1`), if any.
    pub first_unsigned_line: Option<u64>,
    /// The hash of the last entry ([`GENESIS`] for an empty export).
    pub last_hash: [u8; 32],
    /// The Merkle root of all the entries.
    pub root: [u8; 32],
    /// Whether the checkpoints were verified with a key given by the caller. When it is
    /// false they were verified with the key named in the file itself, which proves only
    /// that the file is consistent, not who made it.
    pub key_trusted: bool,
}

impl VerifySummary {
    /// How many entries follow the last checkpoint: chained, but signed by nobody.
    pub fn unsigned_entries(&self) -> u64 {
        self.entries - self.signed_entries
    }

    /// Refuses an export in which some entry is not covered by a checkpoint, naming the
    /// first: without a signature over it, whoever could write the file could have written
    /// that entry (removed the last checkpoint, or appended after it).
    pub fn require_signed(&self) -> Result<(), VerifyError> {
        if self.signed_entries == self.entries {
            return Ok(());
        }
        Err(VerifyError::Unsigned {
            sequence: self.signed_entries + 1,
            line: self.first_unsigned_line,
            unsigned: self.unsigned_entries(),
            entries: self.entries,
        })
    }
}

/// The first problem found in a ledger, naming the entry or checkpoint and, in an export,
/// the line.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The export could not be read.
    #[error("line {line}: cannot read the export: {source}")]
    Read {
        /// The line being read.
        line: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// A line is not JSON, or not the JSON of a line of this format.
    #[error("line {line}{}: {kind}: {message}", column.map(|column| format!(", column {column}")).unwrap_or_default())]
    Json {
        /// The line.
        line: u64,
        /// The column, when known.
        column: Option<usize>,
        /// `malformed JSON` or `invalid line`.
        kind: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The header is missing or unusable.
    #[error("line 1: {0}")]
    Header(String),
    /// An entry does not have the sequence number its position calls for.
    #[error("entry {expected}{}: sequence {found} where {expected} was expected", at(*line))]
    Sequence {
        /// The sequence number expected at this position.
        expected: u64,
        /// The sequence number found.
        found: u64,
        /// The line, in an export.
        line: Option<u64>,
    },
    /// An entry's `previous` is not the hash of the entry before it.
    #[error("entry {sequence}{}: previous hash does not match {}", at(*line), previous_name(*sequence))]
    Previous {
        /// The entry's sequence number.
        sequence: u64,
        /// The line, in an export.
        line: Option<u64>,
    },
    /// An entry that no checkpoint covers, where every entry must be signed
    /// ([`VerifySummary::require_signed`]).
    #[error(
        "entry {sequence}{}: no signed checkpoint covers it ({unsigned} of {entries} entries are not signed)",
        at(*line)
    )]
    Unsigned {
        /// The first entry no checkpoint covers.
        sequence: u64,
        /// Its line, in an export.
        line: Option<u64>,
        /// How many entries no checkpoint covers.
        unsigned: u64,
        /// How many entries the export holds.
        entries: u64,
    },
    /// An export ends before an entry the caller needs.
    #[error("the export holds {entries} entries, fewer than the {expected} to replay")]
    Short {
        /// The entries it holds.
        entries: u64,
        /// The entries needed.
        expected: u64,
    },
    /// A checkpoint does not hold.
    #[error("checkpoint at line {line}{}: {problem}", size.map(|size| format!(" (size {size})")).unwrap_or_default())]
    Checkpoint {
        /// The line.
        line: u64,
        /// The size the checkpoint claims, when readable.
        size: Option<u64>,
        /// What is wrong.
        problem: CheckpointProblem,
    },
}

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointProblem {
    /// The note is malformed, or not signed by the key, or its signature does not verify.
    #[error("{0}")]
    Note(NoteError),
    /// Its origin is not the one in the header.
    #[error("origin {found:?} is not the export's origin {expected:?}")]
    Origin {
        /// The header's origin.
        expected: String,
        /// The checkpoint's origin.
        found: String,
    },
    /// It claims more entries than precede it.
    #[error("it covers {size} entries but only {entries} precede it")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The entries before it.
        entries: u64,
    },
    /// It does not follow the entry its size names.
    #[error("it follows entry {entries}; a checkpoint follows the entry its size names")]
    Misplaced {
        /// The entries before it.
        entries: u64,
    },
    /// Its root is not the Merkle root of the entries it covers.
    #[error("root does not match the entries")]
    Root,
}

fn at(line: Option<u64>) -> String {
    line.map(|line| format!(" (line {line})"))
        .unwrap_or_default()
}

fn previous_name(sequence: u64) -> String {
    match sequence {
        1 => "the genesis hash".to_owned(),
        _ => format!("entry {}", sequence - 1),
    }
}

/// The running state of a verification: the hash chain and the Merkle tree.
#[derive(Debug)]
struct Chain {
    /// The entries seen so far.
    entries: u64,
    last_hash: [u8; 32],
    /// `last_hash` in lowercase hex, to compare with `previous` as written.
    last_hex: [u8; 64],
    tree: Tree,
}

impl Chain {
    fn new() -> Self {
        let mut chain = Self {
            entries: 0,
            last_hash: GENESIS,
            last_hex: [0; 64],
            tree: Tree::new(),
        };
        chain.set_last(GENESIS);
        chain
    }

    fn set_last(&mut self, hash: [u8; 32]) {
        self.last_hash = hash;
        hex::encode_to_slice(hash, &mut self.last_hex).expect("64 hex digits for 32 bytes");
    }

    /// Checks and appends one entry, given its sequence number, its `previous` as written
    /// and its canonical bytes.
    fn push(
        &mut self,
        sequence: u64,
        previous: &str,
        canonical: &[u8],
        line: Option<u64>,
    ) -> Result<(), VerifyError> {
        let expected = self.entries + 1;
        if sequence != expected {
            return Err(VerifyError::Sequence {
                expected,
                found: sequence,
                line,
            });
        }
        if previous.as_bytes() != self.last_hex {
            return Err(VerifyError::Previous { sequence, line });
        }
        self.set_last(Sha256::digest(canonical).into());
        self.tree.push(leaf_hash(canonical));
        self.entries = expected;
        Ok(())
    }

    /// Checks a checkpoint that follows the entries seen so far.
    fn checkpoint(
        &self,
        note: &str,
        line: u64,
        origin: &str,
        key: &VerifierKey,
    ) -> Result<u64, VerifyError> {
        let error = |size: Option<u64>, problem| VerifyError::Checkpoint {
            line,
            size,
            problem,
        };
        let checkpoint = note::verify(note, key).map_err(|source| {
            error(note::unverified_size(note), CheckpointProblem::Note(source))
        })?;
        let size = Some(checkpoint.size);
        if checkpoint.origin != origin {
            let problem = CheckpointProblem::Origin {
                expected: origin.to_owned(),
                found: checkpoint.origin,
            };
            return Err(error(size, problem));
        }
        if checkpoint.size > self.entries {
            let problem = CheckpointProblem::TooLarge {
                size: checkpoint.size,
                entries: self.entries,
            };
            return Err(error(size, problem));
        }
        if checkpoint.size < self.entries {
            return Err(error(
                size,
                CheckpointProblem::Misplaced {
                    entries: self.entries,
                },
            ));
        }
        if checkpoint.root != self.tree.root() {
            return Err(error(size, CheckpointProblem::Root));
        }
        Ok(checkpoint.size)
    }
}

/// Verifies an in-memory chain of entries, from entry 1: sequence numbers and `previous`
/// hashes, as [`verify_export`] does. Returns the hash of the last entry ([`GENESIS`] for
/// none).
pub fn verify_chain(entries: &[Entry]) -> Result<[u8; 32], VerifyError> {
    let mut chain = Chain::new();
    let mut canonical = Vec::with_capacity(512);
    for entry in entries {
        canonical.clear();
        entry.write_canonical(&mut canonical);
        chain.push(entry.sequence, &entry.previous, &canonical, None)?;
    }
    Ok(chain.last_hash)
}

/// The header line.
#[derive(Deserialize)]
struct Header {
    gantry_ledger: u64,
    origin: String,
    key: String,
}

/// Any line after the header.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRef<'a> {
    #[serde(default, borrow)]
    entry: Option<EntryRef<'a>>,
    #[serde(default)]
    checkpoint: Option<String>,
}

pub(super) fn json_error(line: u64, error: &serde_json::Error) -> VerifyError {
    let kind = match error.classify() {
        serde_json::error::Category::Data => "invalid line",
        _ => "malformed JSON",
    };
    let mut message = error.to_string();
    // serde_json appends " at line 1 column N": the line is ours, the column is kept apart.
    if let Some(position) = message.rfind(" at line ") {
        message.truncate(position);
    }
    let column = (error.column() > 0).then_some(error.column());
    VerifyError::Json {
        line,
        column,
        kind,
        message,
    }
}

/// Reads lines from `reader`, numbering them from 1.
struct Lines<R> {
    reader: R,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    /// Reads the next line into `buffer`, without its line end; false at the end.
    fn next(&mut self, buffer: &mut Vec<u8>) -> Result<bool, VerifyError> {
        buffer.clear();
        self.number += 1;
        let read = self
            .reader
            .read_until(b'\n', buffer)
            .map_err(|source| VerifyError::Read {
                line: self.number,
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        if buffer.last() == Some(&b'\n') {
            buffer.pop();
        }
        Ok(true)
    }
}

/// Verifies an export read from `reader`; see the [module documentation](self).
///
/// Checkpoints are verified with `trusted_key`, or, when it is `None`, with the key the
/// header names, which [`VerifySummary::key_trusted`] then reports.
pub fn verify_export(
    reader: impl BufRead,
    trusted_key: Option<&VerifierKey>,
) -> Result<VerifySummary, VerifyError> {
    let mut lines = Lines { reader, number: 0 };
    let mut buffer = Vec::with_capacity(1024);
    if !lines.next(&mut buffer)? {
        return Err(VerifyError::Header("the export is empty".to_owned()));
    }
    let header: Header = serde_json::from_slice(&buffer).map_err(|error| {
        VerifyError::Header(format!(
            "not a ledger export header: {}",
            json_error(1, &error)
        ))
    })?;
    if header.gantry_ledger != FORMAT_VERSION {
        return Err(VerifyError::Header(format!(
            "unsupported gantry_ledger version {} (this reader knows {FORMAT_VERSION})",
            header.gantry_ledger
        )));
    }
    let header_key = VerifierKey::parse(&header.key)
        .map_err(|error| VerifyError::Header(format!("key: {error}")))?;
    let key = trusted_key.unwrap_or(&header_key);

    // The calling thread reads, parses and canonicalizes; a second one hashes and checks.
    // Each problem is found in file order: the checker sees every line before the one the
    // reader stopped at.
    let origin = header.origin.as_str();
    let (read, outcome) = thread::scope(|scope| {
        let (to_checker, from_reader) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let (to_reader, recycled) = mpsc::channel::<Batch>();
        let checker = scope.spawn(move || check_batches(&from_reader, &to_reader, origin, key));
        let read = read_batches(&mut lines, &mut buffer, &to_checker, &recycled);
        drop(to_checker);
        let outcome = checker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, outcome)
    });
    let checked = outcome?;
    read?;
    Ok(VerifySummary {
        origin: header.origin,
        entries: checked.chain.entries,
        checkpoints: checked.checkpoints,
        signed_entries: checked.signed_entries,
        first_unsigned_line: checked.first_unsigned_line,
        last_hash: checked.chain.last_hash,
        root: checked.chain.tree.root(),
        key_trusted: trusted_key.is_some(),
    })
}

/// Lines per batch handed from the reading thread to the checking one.
const BATCH_LINES: usize = 1024;
/// Batches queued between the two threads: this bounds the memory a verification uses.
const BATCHES_IN_FLIGHT: usize = 4;

/// Parsed lines on their way from the reading thread to the checking one.
#[derive(Debug, Default)]
struct Batch {
    /// The entries' `previous` fields and canonical bytes, which `items` point into.
    bytes: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Debug)]
enum Item {
    Entry {
        line: u64,
        sequence: u64,
        previous: Range<usize>,
        canonical: Range<usize>,
    },
    Checkpoint {
        line: u64,
        note: String,
    },
}

/// Reads, parses and canonicalizes lines and sends them on in batches. Returns the first
/// problem it finds (after sending the lines before it), or early without one if the
/// checker has stopped, which it does only at a problem of its own.
fn read_batches(
    lines: &mut Lines<impl BufRead>,
    buffer: &mut Vec<u8>,
    to_checker: &mpsc::SyncSender<Batch>,
    recycled: &mpsc::Receiver<Batch>,
) -> Result<(), VerifyError> {
    let mut batch = Batch::default();
    let result = loop {
        match read_line(lines, buffer, &mut batch) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(error) => break Err(error),
        }
        if batch.items.len() == BATCH_LINES {
            let mut next = recycled.try_recv().unwrap_or_default();
            next.bytes.clear();
            next.items.clear();
            if to_checker
                .send(std::mem::replace(&mut batch, next))
                .is_err()
            {
                return Ok(());
            }
        }
    };
    if !batch.items.is_empty() {
        // A send fails only when the checker has stopped at a problem, which it reports.
        let _ = to_checker.send(batch);
    }
    result
}

/// Reads one line into `batch`; false at the end of the export.
fn read_line(
    lines: &mut Lines<impl BufRead>,
    buffer: &mut Vec<u8>,
    batch: &mut Batch,
) -> Result<bool, VerifyError> {
    if !lines.next(buffer)? {
        return Ok(false);
    }
    let line = lines.number;
    let parsed: LineRef<'_> =
        serde_json::from_slice(buffer).map_err(|error| json_error(line, &error))?;
    let item = match parsed {
        LineRef {
            entry: Some(entry),
            checkpoint: None,
        } => {
            let bytes = &mut batch.bytes;
            let start = bytes.len();
            bytes.extend_from_slice(entry.previous().as_bytes());
            let previous = start..bytes.len();
            entry.write_canonical(bytes);
            Item::Entry {
                line,
                sequence: entry.sequence,
                previous: previous.clone(),
                canonical: previous.end..bytes.len(),
            }
        }
        LineRef {
            entry: None,
            checkpoint: Some(note),
        } => Item::Checkpoint { line, note },
        _ => {
            return Err(VerifyError::Json {
                line,
                column: None,
                kind: "invalid line",
                message: "a line holds exactly one of `entry` and `checkpoint`".to_owned(),
            });
        }
    };
    batch.items.push(item);
    Ok(true)
}

/// What the checking thread found.
#[derive(Debug)]
struct Checked {
    chain: Chain,
    checkpoints: u64,
    signed_entries: u64,
    /// The line of entry `signed_entries + 1`, once read.
    first_unsigned_line: Option<u64>,
}

/// Checks the batches in order, and sends them back for reuse.
fn check_batches(
    from_reader: &mpsc::Receiver<Batch>,
    to_reader: &mpsc::Sender<Batch>,
    origin: &str,
    key: &VerifierKey,
) -> Result<Checked, VerifyError> {
    let mut checked = Checked {
        chain: Chain::new(),
        checkpoints: 0,
        signed_entries: 0,
        first_unsigned_line: None,
    };
    for batch in from_reader {
        for item in &batch.items {
            match item {
                Item::Entry {
                    line,
                    sequence,
                    previous,
                    canonical,
                } => {
                    // `previous` was copied from a `str`, at character boundaries.
                    let previous = std::str::from_utf8(&batch.bytes[previous.clone()])
                        .expect("copied from a str");
                    let canonical = &batch.bytes[canonical.clone()];
                    checked
                        .chain
                        .push(*sequence, previous, canonical, Some(*line))?;
                    if checked.first_unsigned_line.is_none() {
                        checked.first_unsigned_line = Some(*line);
                    }
                }
                Item::Checkpoint { line, note } => {
                    checked.signed_entries = checked.chain.checkpoint(note, *line, origin, key)?;
                    checked.checkpoints += 1;
                    // A checkpoint covers every entry before it.
                    checked.first_unsigned_line = None;
                }
            }
        }
        // The reader may be done and gone: then the batch is simply dropped.
        let _ = to_reader.send(batch);
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::super::merkle;
    use super::super::note::{Checkpoint, SigningKey, generate, sign};
    use super::*;

    const ORIGIN: &str = "gantry.example.com/ledger";
    const ENTRIES: u64 = 300;
    const EVERY: u64 = 50;

    /// A chain of `count` entries, each naming the hash of the one before.
    fn chain(count: u64) -> Vec<Entry> {
        let mut previous = GENESIS;
        (1..=count)
            .map(|sequence| {
                let entry = Entry {
                    sequence,
                    time: format!(
                        "2026-11-21T22:{:02}:{:02}.{:03}Z",
                        sequence / 60 % 60,
                        sequence % 60,
                        sequence % 1000
                    ),
                    actor: format!("user{}@example.com", sequence % 7),
                    action: ["release.created", "promotion.succeeded", "environment.held"]
                        [(sequence % 3) as usize]
                        .to_owned(),
                    project: "shop".to_owned(),
                    environment: (sequence % 3 != 0).then(|| "production".to_owned()),
                    release: Some(format!("2026.11.{sequence}")),
                    digests: BTreeMap::from([
                        ("api".to_owned(), format!("sha256:{sequence:064x}")),
                        ("web".to_owned(), format!("sha256:{:064x}", sequence * 31)),
                    ]),
                    reason: (sequence % 5 == 0).then(|| "a \"quoted\" reason\n".to_owned()),
                    detail: if sequence % 2 == 0 {
                        json!({"attempt": sequence % 4})
                    } else {
                        Value::Null
                    },
                    previous: hex::encode(previous),
                };
                previous = entry.hash();
                entry
            })
            .collect()
    }

    /// Signed checkpoints of sizes 0, EVERY, 2 × EVERY, … up to the chain's length.
    fn checkpoints(entries: &[Entry], key: &SigningKey) -> Vec<String> {
        let leaves: Vec<[u8; 32]> = entries
            .iter()
            .map(|entry| merkle::leaf_hash(&entry.canonical_bytes()))
            .collect();
        (0..=entries.len() as u64 / EVERY)
            .map(|index| {
                let size = index * EVERY;
                let root = merkle::root(&leaves[..size as usize]);
                sign(
                    &Checkpoint {
                        origin: ORIGIN.to_owned(),
                        size,
                        root,
                    },
                    key,
                )
            })
            .collect()
    }

    struct Fixture {
        key: SigningKey,
        entries: Vec<Entry>,
        lines: Vec<String>,
    }

    impl Fixture {
        fn new() -> Self {
            Self::with_entries(ENTRIES)
        }

        fn with_entries(count: u64) -> Self {
            let key = generate("ledger").expect("generates");
            let entries = chain(count);
            let mut out = Vec::new();
            let notes = checkpoints(&entries, &key);
            write_export(
                &mut out,
                ORIGIN,
                &key.verifier_key(),
                entries.clone(),
                notes,
            )
            .expect("writes");
            let lines = String::from_utf8(out)
                .expect("UTF-8")
                .lines()
                .map(str::to_owned)
                .collect();
            Self {
                key,
                entries,
                lines,
            }
        }

        fn verify(&self, lines: &[String]) -> Result<VerifySummary, VerifyError> {
            verify_export(lines.join("\n").as_bytes(), Some(&self.key.verifier_key()))
        }

        fn error(&self, lines: &[String]) -> String {
            self.verify(lines)
                .expect_err("verification fails")
                .to_string()
        }

        /// The line number (1-based) of entry `sequence`.
        fn line_of(&self, sequence: u64) -> usize {
            let needle = format!(",\"sequence\":{sequence},");
            self.lines
                .iter()
                .position(|line| line.contains(&needle))
                .expect("entry exists")
                + 1
        }

        /// The lines with entry `sequence` changed by `change` (and written back in order).
        fn with_entry_changed(
            &self,
            sequence: u64,
            change: impl FnOnce(&mut Entry),
        ) -> Vec<String> {
            let mut entry = self.entries[sequence as usize - 1].clone();
            change(&mut entry);
            let mut lines = self.lines.clone();
            lines[self.line_of(sequence) - 1] =
                serde_json::to_string(&json!({"entry": entry})).expect("JSON");
            lines
        }
    }

    #[test]
    fn a_valid_export_verifies() {
        let fixture = Fixture::new();
        assert_eq!(
            fixture.lines.len() as u64,
            1 + ENTRIES + 1 + ENTRIES / EVERY
        );
        assert!(fixture.lines[0].starts_with(
            r#"{"gantry_ledger":1,"origin":"gantry.example.com/ledger","key":"ledger+"#
        ));
        assert!(fixture.lines[1].starts_with(r#"{"checkpoint":"gantry.example.com/ledger\n0\n"#));
        assert_eq!(fixture.line_of(50), 52);
        assert!(fixture.lines[52].starts_with(r#"{"checkpoint":"gantry.example.com/ledger\n50\n"#));
        // An entry line holds the entry's canonical bytes.
        assert_eq!(
            fixture.lines[2],
            format!(
                "{{\"entry\":{}}}",
                String::from_utf8(fixture.entries[0].canonical_bytes()).expect("UTF-8")
            )
        );

        let summary = fixture.verify(&fixture.lines).expect("verifies");
        let leaves: Vec<[u8; 32]> = fixture
            .entries
            .iter()
            .map(|entry| merkle::leaf_hash(&entry.canonical_bytes()))
            .collect();
        assert_eq!(
            summary,
            VerifySummary {
                origin: ORIGIN.to_owned(),
                entries: ENTRIES,
                checkpoints: ENTRIES / EVERY + 1,
                signed_entries: ENTRIES,
                first_unsigned_line: None,
                last_hash: fixture.entries.last().expect("entries").hash(),
                root: merkle::root(&leaves),
                key_trusted: true,
            }
        );
        assert_eq!(
            verify_chain(&fixture.entries).expect("verifies"),
            summary.last_hash
        );
        assert_eq!(verify_chain(&[]).expect("verifies"), GENESIS);

        // Without a trusted key, the header's key is used and the summary says so.
        let summary = verify_export(fixture.lines.join("\n").as_bytes(), None).expect("verifies");
        assert!(!summary.key_trusted);

        // Entries after the last checkpoint are chained but not signed.
        let summary = fixture
            .verify(&fixture.lines[..fixture.line_of(ENTRIES - 10)])
            .expect("verifies");
        assert_eq!(
            (summary.entries, summary.signed_entries),
            (ENTRIES - 10, ENTRIES - 50)
        );
        assert_eq!(summary.unsigned_entries(), 40);

        // Whitespace and member order are not significant.
        let mut lines = fixture.lines.clone();
        let line = fixture.line_of(7) - 1;
        lines[line] = serde_json::to_string_pretty(&json!({"entry": fixture.entries[6]}))
            .expect("JSON")
            .replace('\n', " ");
        fixture.verify(&lines).expect("verifies");
    }

    #[test]
    #[expect(clippy::type_complexity, reason = "a table of named changes")]
    fn tampering_with_any_field_breaks_the_chain_at_the_next_entry() {
        let fixture = Fixture::new();
        // Entry 122 has every optional field but a reason.
        let next_line = fixture.line_of(123);
        let expected =
            format!("entry 123 (line {next_line}): previous hash does not match entry 122");
        let changes: [(&str, fn(&mut Entry)); 10] = [
            ("time", |entry| entry.time.push('0')),
            ("actor", |entry| {
                entry.actor = "mallory@example.com".to_owned();
            }),
            ("action", |entry| {
                entry.action = "release.deleted".to_owned();
            }),
            ("project", |entry| entry.project.push('s')),
            ("environment", |entry| entry.environment = None),
            ("release", |entry| entry.release = Some("other".to_owned())),
            ("digests", |entry| {
                entry
                    .digests
                    .insert("api".to_owned(), format!("sha256:{}", "f".repeat(64)));
            }),
            ("reason", |entry| entry.reason = Some("because".to_owned())),
            ("detail", |entry| entry.detail = json!({"attempt": 9})),
            ("a removed digest", |entry| {
                entry.digests.remove("web");
            }),
        ];
        for (field, change) in changes {
            let lines = fixture.with_entry_changed(122, change);
            assert_eq!(fixture.error(&lines), expected, "{field}");
        }

        let lines = fixture.with_entry_changed(123, |entry| entry.previous = "0".repeat(64));
        let line = fixture.line_of(123);
        assert_eq!(
            fixture.error(&lines),
            format!("entry 123 (line {line}): previous hash does not match entry 122")
        );
        let lines = fixture.with_entry_changed(1, |entry| entry.previous = "1".repeat(64));
        assert_eq!(
            fixture.error(&lines),
            "entry 1 (line 3): previous hash does not match the genesis hash"
        );
        let lines = fixture.with_entry_changed(123, |entry| entry.sequence = 1123);
        assert_eq!(
            fixture.error(&lines),
            format!("entry 123 (line {line}): sequence 1123 where 123 was expected")
        );

        // An unknown field, which the hash would not cover, is refused.
        let mut lines = fixture.lines.clone();
        lines[line - 1] =
            lines[line - 1].replacen("{\"action\"", "{\"approved\":true,\"action\"", 1);
        let error = fixture.error(&lines);
        assert!(
            error.starts_with(&format!("line {line}, column ")),
            "{error}"
        );
        assert!(
            error.contains(": invalid line: unknown field `approved`"),
            "{error}"
        );
    }

    #[test]
    fn tampering_with_the_last_entry_before_a_checkpoint_breaks_the_checkpoint() {
        let fixture = Fixture::new();
        let lines = fixture.with_entry_changed(100, |entry| entry.actor = "mallory".to_owned());
        let line = fixture.line_of(100) + 1;
        assert_eq!(
            fixture.error(&lines),
            format!("checkpoint at line {line} (size 100): root does not match the entries")
        );
    }

    #[test]
    fn rewriting_the_chain_breaks_the_checkpoints() {
        // Change entry 123 and recompute every later `previous`: the chain holds, the next
        // checkpoint does not.
        let fixture = Fixture::new();
        let mut entries = fixture.entries.clone();
        entries[122].actor = "mallory".to_owned();
        for index in 123..entries.len() {
            entries[index].previous = hex::encode(entries[index - 1].hash());
        }
        assert!(verify_chain(&entries).is_ok());
        let mut lines = fixture.lines.clone();
        for entry in &entries[122..] {
            lines[fixture.line_of(entry.sequence) - 1] =
                serde_json::to_string(&json!({"entry": entry})).expect("JSON");
        }
        let line = fixture.line_of(150) + 1;
        assert_eq!(
            fixture.error(&lines),
            format!("checkpoint at line {line} (size 150): root does not match the entries")
        );
    }

    #[test]
    fn removing_or_reordering_entries_is_found() {
        let fixture = Fixture::new();
        let line = fixture.line_of(57);
        let mut lines = fixture.lines.clone();
        lines.remove(line - 1);
        assert_eq!(
            fixture.error(&lines),
            format!("entry 57 (line {line}): sequence 58 where 57 was expected")
        );

        let mut lines = fixture.lines.clone();
        lines.swap(line - 1, line);
        assert_eq!(
            fixture.error(&lines),
            format!("entry 57 (line {line}): sequence 58 where 57 was expected")
        );

        // The same through verify_chain.
        let mut entries = fixture.entries.clone();
        entries.remove(56);
        assert_eq!(
            verify_chain(&entries).expect_err("fails").to_string(),
            "entry 57: sequence 58 where 57 was expected"
        );
        let mut entries = fixture.entries.clone();
        entries[56].reason = Some("edited".to_owned());
        assert_eq!(
            verify_chain(&entries).expect_err("fails").to_string(),
            "entry 58: previous hash does not match entry 57"
        );

        // Removing a whole tail, checkpoints included, leaves a valid (shorter) export: the
        // summary's last hash and size are what a holder of the latest checkpoint compares.
        let summary = fixture
            .verify(&fixture.lines[..=fixture.line_of(200)])
            .expect("verifies");
        assert_eq!((summary.entries, summary.signed_entries), (200, 200));
    }

    #[test]
    fn every_entry_signed_is_required_on_request() {
        let fixture = Fixture::new();
        let summary = fixture.verify(&fixture.lines).expect("verifies");
        summary.require_signed().expect("every entry is signed");
        assert_eq!(summary.unsigned_entries(), 0);

        // The last checkpoint removed: the entries after the one before are unsigned.
        let mut lines = fixture.lines.clone();
        let last = lines.pop().expect("lines");
        assert!(last.starts_with("{\"checkpoint\""), "{last}");
        let summary = fixture.verify(&lines).expect("a consistent export");
        assert_eq!(
            (summary.signed_entries, summary.unsigned_entries()),
            (ENTRIES - EVERY, EVERY)
        );
        let first = ENTRIES - EVERY + 1;
        assert_eq!(
            summary.require_signed().expect_err("refused").to_string(),
            format!(
                "entry {first} (line {}): no signed checkpoint covers it (50 of 300 entries are not signed)",
                fixture.line_of(first)
            )
        );

        // Every checkpoint removed.
        let lines: Vec<String> = fixture
            .lines
            .iter()
            .filter(|line| !line.starts_with("{\"checkpoint\""))
            .cloned()
            .collect();
        let summary = fixture.verify(&lines).expect("a consistent export");
        assert_eq!(
            summary.require_signed().expect_err("refused").to_string(),
            "entry 1 (line 2): no signed checkpoint covers it (300 of 300 entries are not signed)"
        );

        // A forged entry appended after the last checkpoint, chained to the one before.
        let last = fixture.entries.last().expect("entries");
        let forged = Entry {
            sequence: last.sequence + 1,
            actor: "mallory".to_owned(),
            previous: hex::encode(last.hash()),
            ..last.clone()
        };
        let mut lines = fixture.lines.clone();
        lines.push(serde_json::to_string(&json!({"entry": forged})).expect("JSON"));
        let summary = fixture.verify(&lines).expect("a consistent export");
        assert_eq!(
            summary.require_signed().expect_err("refused").to_string(),
            format!(
                "entry 301 (line {}): no signed checkpoint covers it (1 of 301 entries are not signed)",
                lines.len()
            )
        );
    }

    #[test]
    fn checkpoint_problems_are_found() {
        let fixture = Fixture::new();
        let line = fixture.line_of(100) + 1;
        let key_label = format!("ledger+{:08x}", fixture.key.verifier_key().id());

        // A bad signature.
        let mut lines = fixture.lines.clone();
        // The em dash is not escaped in JSON.
        let (body, signature) = lines[line - 1]
            .rsplit_once('\u{2014}')
            .expect("signature line");
        let mut signature = signature.to_owned();
        let flipped = if &signature[30..31] == "A" { "B" } else { "A" };
        signature.replace_range(30..31, flipped);
        lines[line - 1] = format!("{body}\u{2014}{signature}");
        assert_eq!(
            fixture.error(&lines),
            format!(
                "checkpoint at line {line} (size 100): the signature by key {key_label} does not verify"
            )
        );

        // A wrong trusted key, with the same name.
        let other = generate("ledger").expect("generates");
        let error = verify_export(
            fixture.lines.join("\n").as_bytes(),
            Some(&other.verifier_key()),
        )
        .expect_err("fails")
        .to_string();
        let other_label = format!("ledger+{:08x}", other.verifier_key().id());
        assert_eq!(
            error,
            format!(
                "checkpoint at line 2 (size 0): the note has no signature by key {other_label}"
            )
        );

        // A checkpoint that is not where its size says.
        let mut lines = fixture.lines.clone();
        let checkpoint = lines.remove(line - 1);
        lines.insert(line, checkpoint);
        assert_eq!(
            fixture.error(&lines),
            format!(
                "checkpoint at line {} (size 100): it follows entry 101; a checkpoint follows the entry its size names",
                line + 1
            )
        );
        let mut lines = fixture.lines.clone();
        let checkpoint = lines.remove(line - 1);
        lines.insert(line - 2, checkpoint);
        assert_eq!(
            fixture.error(&lines),
            format!(
                "checkpoint at line {} (size 100): it covers 100 entries but only 99 precede it",
                line - 1
            )
        );

        // Another origin, signed by the right key.
        let mut lines = fixture.lines.clone();
        let note = sign(
            &Checkpoint {
                origin: "elsewhere".to_owned(),
                size: 0,
                root: merkle::root(&[]),
            },
            &fixture.key,
        );
        lines[1] = serde_json::to_string(&json!({"checkpoint": note})).expect("JSON");
        assert_eq!(
            fixture.error(&lines),
            "checkpoint at line 2 (size 0): origin \"elsewhere\" is not the export's origin \"gantry.example.com/ledger\""
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        let fixture = Fixture::new();
        let mut lines = fixture.lines.clone();
        lines[9].truncate(40);
        let error = fixture.error(&lines);
        assert!(
            error.starts_with("line 10, column 40: malformed JSON: EOF while parsing"),
            "{error}"
        );

        let mut lines = fixture.lines.clone();
        lines[9] = "{}".to_owned();
        assert_eq!(
            fixture.error(&lines),
            "line 10: invalid line: a line holds exactly one of `entry` and `checkpoint`"
        );
        lines[9] = String::new();
        assert_eq!(
            fixture.error(&lines),
            "line 10: malformed JSON: EOF while parsing a value"
        );

        assert_eq!(
            verify_export(&b""[..], None)
                .expect_err("fails")
                .to_string(),
            "line 1: the export is empty"
        );
        let header = fixture.lines[0].replace("\"gantry_ledger\":1", "\"gantry_ledger\":2");
        assert_eq!(
            verify_export(header.as_bytes(), None)
                .expect_err("fails")
                .to_string(),
            "line 1: unsupported gantry_ledger version 2 (this reader knows 1)"
        );
    }

    #[test]
    fn problems_are_reported_in_file_order() {
        // Several batches of lines pass between the reading and the checking threads: the
        // first problem in the file is the one reported, whichever thread finds it.
        let fixture = Fixture::with_entries(5000);
        fixture.verify(&fixture.lines).expect("verifies");
        let chain_line = fixture.line_of(2500);
        let json_line = fixture.line_of(4000);
        let chain_error =
            format!("entry 2500 (line {chain_line}): previous hash does not match entry 2499");
        let json_error = format!("line {json_line}: malformed JSON: EOF while parsing a value");

        let mut lines = fixture.with_entry_changed(2500, |entry| entry.previous = "0".repeat(64));
        assert_eq!(fixture.error(&lines), chain_error);
        lines[json_line - 1] = String::new();
        assert_eq!(fixture.error(&lines), chain_error);

        let mut lines = fixture.with_entry_changed(4500, |entry| entry.previous = "0".repeat(64));
        lines[json_line - 1] = String::new();
        assert_eq!(fixture.error(&lines), json_error);
    }

    #[test]
    fn the_writer_places_checkpoints() {
        let key = generate("ledger").expect("generates");
        let entries = chain(120);
        let notes = checkpoints(&entries, &key);
        // A checkpoint larger than the entries.
        let error = write_export(
            Vec::new(),
            ORIGIN,
            &key.verifier_key(),
            entries[..60].to_vec(),
            notes.clone(),
        )
        .expect_err("fails");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        // Entries out of order.
        let mut swapped = entries.clone();
        swapped.swap(3, 4);
        let error = write_export(Vec::new(), ORIGIN, &key.verifier_key(), swapped, notes)
            .expect_err("fails");
        assert_eq!(
            error.to_string(),
            "entry 5 written where entry 4 was expected"
        );
        // A checkpoint that does not fit where it is written.
        let mut export =
            ExportWriter::new(Vec::new(), ORIGIN, &key.verifier_key()).expect("writes");
        export.entry(&entries[0]).expect("writes");
        let note = sign(
            &Checkpoint {
                origin: ORIGIN.to_owned(),
                size: 2,
                root: [0; 32],
            },
            &key,
        );
        assert_eq!(
            export.checkpoint(&note).expect_err("fails").to_string(),
            "a checkpoint of size 2 cannot follow entry 1"
        );
    }
}
