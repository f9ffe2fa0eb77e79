//! Progress bars for copies: one per blob in flight and one for the total.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use gantry_core::Digest;
use gantry_oci::{BlobOutcome, Error, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[derive(Debug)]
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    total_shown: AtomicBool,
    blobs: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Bars {
        let multi = MultiProgress::new();
        // Drawn only once a plan arrives: an empty total would show as a full bar.
        let total = ProgressBar::hidden();
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        total.set_prefix("total");
        Bars {
            multi,
            total,
            total_shown: AtomicBool::new(false),
            blobs: Mutex::new(HashMap::new()),
        }
    }

    pub fn finish(&self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Progress for Bars {
    fn planned(&self, blobs: usize, bytes: u64) {
        self.total.inc_length(bytes);
        self.total.set_message(format!("{blobs} blobs"));
        if !self.total_shown.swap(true, Ordering::Relaxed) {
            self.multi.insert(0, self.total.clone());
        }
    }

    fn blob_started(&self, digest: &Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {bytes}/{total_bytes}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix(digest.short()[..8].to_owned());
        self.blobs.lock().expect("lock").insert(digest.clone(), bar);
    }

    fn blob_bytes(&self, digest: &Digest, bytes: u64) {
        self.total.inc(bytes);
        if let Some(bar) = self.blobs.lock().expect("lock").get(digest) {
            bar.inc(bytes);
        }
    }

    fn blob_restarted(&self, digest: &Digest, attempt: u32, error: &Error) {
        if let Some(bar) = self.blobs.lock().expect("lock").get(digest) {
            self.total
                .set_position(self.total.position().saturating_sub(bar.position()));
            bar.set_position(0);
            // Drawn beside the bars, not through the printer; escaped the same way (the
            // error may quote the registry).
            let line = crate::printer::Text::line(format_args!(
                "retrying {} (attempt {}): {error}",
                digest.short(),
                attempt + 1
            ));
            let _ = self.multi.println(line.as_str().trim_end());
        }
    }

    fn blob_finished(&self, digest: &Digest, size: u64, outcome: BlobOutcome) {
        if let Some(bar) = self.blobs.lock().expect("lock").remove(digest) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if outcome != BlobOutcome::Copied {
            // Skipped and mounted blobs move no bytes but still count as done.
            self.total.inc(size);
        }
    }
}
