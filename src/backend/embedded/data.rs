//! Image data of the embedded store: uploads written to a staging file,
//! hashed, fsynced and renamed into place; downloads read back as a stream,
//! one chunk ahead of the one being sent, chunk size by the number of
//! downloads under way.

use super::policy::{self, Rule};
use super::{EmbeddedStore, ImageFile};
use crate::backend::error::{conflict, forbidden};
use crate::backend::{BackendError, BackendResult, Image, ImageBackend, RequestContext};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::Md5;
use sha2::{Digest, Sha512};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

impl EmbeddedStore {
    /// Store the image data from `body` (Glance `PUT /v2/images/{id}/file`): the
    /// image is `saving` meanwhile, `active` once the fsynced file is in place,
    /// and back to `queued` with nothing kept if the body breaks off.
    pub async fn upload<S, E>(&self, ctx: &RequestContext, id: &str, mut body: S) -> BackendResult<Image>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let id_owned = id.to_string();
        self.modify(ctx, id, &[Rule::UploadImage], |img| {
            if img.status != "queued" {
                return Err(conflict(&format!(
                    "Image status transition from {} to saving is not allowed",
                    img.status
                )));
            }
            img.status = "saving".into();
            Ok(())
        })
        .await?;
        let staging = self
            .inner
            .dir
            .join("staging")
            .join(format!("{id_owned}.{}", uuid::Uuid::new_v4()));
        let result = async {
            let mut file = tokio::fs::File::create(&staging).await.map_err(io_err)?;
            let (mut md5, mut sha) = (Md5::new(), Sha512::new());
            let mut size: i64 = 0;
            let mut head: Vec<u8> = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BackendError::UploadInterrupted(e.to_string()))?;
                if head.len() < 32 {
                    head.extend_from_slice(&chunk[..chunk.len().min(32 - head.len())]);
                }
                md5.update(&chunk);
                sha.update(&chunk);
                size += chunk.len() as i64;
                file.write_all(&chunk).await.map_err(io_err)?;
            }
            file.sync_all().await.map_err(io_err)?;
            drop(file);
            let dest = self.file_path(&id_owned);
            tokio::fs::rename(&staging, &dest).await.map_err(io_err)?;
            let dir = self.inner.dir.join("images");
            tokio::task::spawn_blocking(move || std::fs::File::open(dir).and_then(|d| d.sync_all()))
                .await
                .map_err(|e| BackendError::Internal(e.to_string()))?
                .map_err(io_err)?;
            Ok::<_, BackendError>((size, hex(&md5.finalize()), hex(&sha.finalize()), head))
        }
        .await;
        match result {
            Ok((size, checksum, hash, head)) => {
                self.modify(ctx, &id_owned, &[Rule::UploadImage], move |img| {
                    img.status = "active".into();
                    img.size = Some(size);
                    img.virtual_size = virtual_size(img.disk_format.as_deref(), size, &head);
                    img.checksum = Some(checksum);
                    img.os_hash_algo = Some("sha512".into());
                    img.os_hash_value = Some(hash);
                    Ok(())
                })
                .await
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&staging).await;
                let _ = self
                    .modify(ctx, &id_owned, &[Rule::UploadImage], |img| {
                        img.status = "queued".into();
                        Ok(())
                    })
                    .await;
                Err(e)
            }
        }
    }

    /// The data file of an active image (Glance: `download_image`, then 403
    /// deactivated, 204 no data).
    pub async fn open_file(&self, ctx: &RequestContext, id: &str) -> BackendResult<ImageFile> {
        let image = ImageBackend::get(self, ctx, id).await?;
        policy::enforce(Rule::DownloadImage, &image, ctx)?;
        match image.status.as_str() {
            "active" => Ok(ImageFile {
                path: self.file_path(&image.id),
                image,
            }),
            // Glance lets admins download a deactivated image.
            "deactivated" if ctx.is_admin() => Ok(ImageFile {
                path: self.file_path(&image.id),
                image,
            }),
            "deactivated" => Err(forbidden(
                "The requested image has been deactivated. Image data download is forbidden.",
            )),
            _ => Err(BackendError::NoData),
        }
    }
}

/// The virtual size Glance's format inspection reports: a raw disk's own size,
/// a qcow2 disk's from its header; unknown otherwise.
fn virtual_size(disk_format: Option<&str>, size: i64, head: &[u8]) -> Option<i64> {
    match disk_format {
        Some("raw") => Some(size),
        Some("qcow2") if head.len() >= 32 && head.starts_with(b"QFI\xfb") => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[24..32]);
            i64::try_from(u64::from_be_bytes(b)).ok()
        }
        _ => None,
    }
}

fn io_err(e: std::io::Error) -> BackendError {
    BackendError::Internal(format!("image file: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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
