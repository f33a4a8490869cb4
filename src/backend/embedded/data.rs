//! Image data of the embedded store read back as a stream: one chunk ahead
//! of the one being sent, chunk size by the number of downloads under way.

use super::io_err;
use crate::backend::BackendError;
use bytes::Bytes;
use std::path::PathBuf;

/// `len` bytes from `start` of the file at `path` as a stream of chunks (256 KiB
/// while at most 8 downloads run, 64 KiB beyond); a file that ends early makes
/// the stream fail, never end short.
pub(super) fn file_stream(path: PathBuf, start: u64, len: u64) -> crate::backend::DataStream {
    use std::io::{Read, Seek};
    use std::sync::atomic::{AtomicUsize, Ordering};
    /// Downloads under way in this process.
    static ACTIVE: AtomicUsize = AtomicUsize::new(0);
    /// Bytes per read: large while few downloads run (one stream is bound by
    /// the round trips to the blocking pool), small when many do (memory:
    /// two chunks per download).
    fn chunk() -> u64 {
        if ACTIVE.load(Ordering::Relaxed) <= 8 {
            256 * 1024
        } else {
            64 * 1024
        }
    }
    type ChunkRead = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>, usize)>>;
    /// Read the next chunk on a blocking thread, straight into the buffer that
    /// is sent. The buffer is allocated here, on the worker thread that frees
    /// it once sent: buffers made on the blocking threads would spread over
    /// malloc arenas that keep what they once held.
    fn read_next(file: Option<std::fs::File>, path: PathBuf, start: u64, want: usize) -> ChunkRead {
        let mut buf = vec![0u8; want];
        tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => {
                    let mut f = std::fs::File::open(&path)?;
                    f.seek(std::io::SeekFrom::Start(start))?;
                    f
                }
            };
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok((file, buf, want))
        })
    }
    struct State {
        /// The read under way: one chunk ahead of the one being sent.
        pending: Option<ChunkRead>,
        path: PathBuf,
        start: u64,
        /// Bytes not yet asked of a read.
        unread: u64,
        /// Bytes not yet yielded.
        remaining: u64,
    }
    impl Drop for State {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let state = State {
        pending: None,
        path,
        start,
        unread: len,
        remaining: len,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        if st.remaining == 0 {
            return None;
        }
        let pending = match st.pending.take() {
            Some(p) => p,
            None => {
                let want = st.unread.min(chunk()) as usize;
                st.unread -= want as u64;
                read_next(None, st.path.clone(), st.start, want)
            }
        };
        let read = pending.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match read {
            Ok((_, buf, _)) if buf.is_empty() => {
                st.remaining = 0;
                Some((
                    Err(BackendError::Internal(
                        "image file is shorter than its recorded size".into(),
                    )),
                    st,
                ))
            }
            Ok((file, buf, want)) => {
                st.remaining = st.remaining.saturating_sub(buf.len() as u64);
                // A short read: ask for the rest with the next one.
                st.unread += (want - buf.len()) as u64;
                if st.unread > 0 && st.remaining > 0 {
                    let want = st.unread.min(chunk()) as usize;
                    st.unread -= want as u64;
                    st.pending = Some(read_next(Some(file), st.path.clone(), st.start, want));
                }
                Some((Ok(Bytes::from(buf)), st))
            }
            Err(e) => {
                st.remaining = 0;
                Some((Err(io_err(e)), st))
            }
        }
    }))
}
