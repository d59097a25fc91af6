//! Persistence for the C client: the `MQTTCLIENT_PERSISTENCE_USER` adapter that calls an
//! application's eight `MQTTClient_persistence` callbacks, and the per-handle shared store
//! that keeps one store instance (and one open) across the successive Rust clients that a
//! C handle creates, one per `MQTTClient_connect`.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;
use std::sync::{Arc, Mutex};

use super::types::*;
use crate::persist::{PersistError, Result, Store};

/// A [`Store`] backed by the C callbacks of an `MQTTClient_persistence` (Paho's
/// `MQTTCLIENT_PERSISTENCE_USER`).
///
/// Buffer ownership follows Paho: buffers passed to `pput` belong to the library and are
/// valid only during the call; the buffer `pget` returns and the key array (and each key)
/// `pkeys` returns are allocated by the application with `malloc` (or `MQTTClient_malloc`)
/// and freed here with `free()`.
///
/// Callbacks run on the thread that uses the store: the client's I/O thread, or the thread
/// calling `MQTTClient_create` / `MQTTClient_connect` / `MQTTClient_destroy`. Calls are
/// serialised by the [`SharedStore`] lock, never concurrent.
pub struct UserStore {
    p: MQTTClient_persistence,
    handle: *mut c_void,
    open: bool,
}

// SAFETY: the raw pointers are the application's opaque context and store handle, which
// Paho also uses from its own threads; UserStore is only ever used under a Mutex (one
// thread at a time).
unsafe impl Send for UserStore {}

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStore")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

fn c_key(key: &str) -> Result<CString> {
    CString::new(key).map_err(|_| PersistError::InvalidKey(key.to_owned()))
}

fn check(rc: c_int) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PersistError::User(rc))
    }
}

impl UserStore {
    /// Wraps a copy of the application's callback table. Returns `None` when any of the
    /// eight functions is NULL (Paho then fails `MQTTClient_create` with
    /// `MQTTCLIENT_PERSISTENCE_ERROR`).
    ///
    /// # Safety
    /// `p` is NULL or points to a readable `MQTTClient_persistence` whose functions stay
    /// callable, with its `context`, for the life of the store.
    pub unsafe fn new(p: *const MQTTClient_persistence) -> Option<UserStore> {
        if p.is_null() {
            return None;
        }
        // SAFETY: non-NULL and readable per the contract.
        let p = unsafe { ptr::read_unaligned(p) };
        let all = p.popen.is_some()
            && p.pclose.is_some()
            && p.pput.is_some()
            && p.pget.is_some()
            && p.premove.is_some()
            && p.pkeys.is_some()
            && p.pclear.is_some()
            && p.pcontainskey.is_some();
        all.then_some(UserStore {
            p,
            handle: ptr::null_mut(),
            open: false,
        })
    }

    fn opened(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(PersistError::Closed)
        }
    }
}

impl Store for UserStore {
    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<()> {
        if self.open {
            return Ok(());
        }
        let (Some(f), Ok(cid), Ok(uri)) = (
            self.p.popen,
            CString::new(client_id),
            CString::new(server_uri),
        ) else {
            return Err(PersistError::User(MQTTCLIENT_PERSISTENCE_ERROR));
        };
        let mut h: *mut c_void = ptr::null_mut();
        // SAFETY: the application's popen with valid NUL-terminated strings, a writable
        // handle slot and its own context (UserStore::new contract).
        check(unsafe { f(&mut h, cid.as_ptr(), uri.as_ptr(), self.p.context) })?;
        self.handle = h;
        self.open = true;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        let Some(f) = self.p.pclose else {
            return Ok(());
        };
        // SAFETY: the handle popen returned, closed once.
        check(unsafe { f(self.handle) })
    }

    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<()> {
        self.opened()?;
        crate::persist::validate_key(key)?;
        let k = c_key(key)?;
        let mut bufs: Vec<*mut c_char> = parts.iter().map(|p| p.as_ptr() as *mut c_char).collect();
        let mut lens = parts
            .iter()
            .map(|p| c_int::try_from(p.len()).map_err(|_| PersistError::User(-1)))
            .collect::<Result<Vec<c_int>>>()?;
        let n = c_int::try_from(parts.len()).map_err(|_| PersistError::User(-1))?;
        let Some(f) = self.p.pput else {
            return Err(PersistError::Closed);
        };
        // SAFETY: valid key string and `n` buffers with their lengths, alive for the call;
        // Paho's contract says the callback only reads them.
        check(unsafe {
            f(
                self.handle,
                k.as_ptr() as *mut c_char,
                n,
                bufs.as_mut_ptr(),
                lens.as_mut_ptr(),
            )
        })
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.opened()?;
        let k = c_key(key)?;
        let Some(f) = self.p.pget else {
            return Err(PersistError::Closed);
        };
        let mut buf: *mut c_char = ptr::null_mut();
        let mut len: c_int = 0;
        // SAFETY: valid key and out-pointers for the call.
        let rc = unsafe { f(self.handle, k.as_ptr() as *mut c_char, &mut buf, &mut len) };
        if rc != 0 {
            if !buf.is_null() {
                // SAFETY: a buffer the callback allocated with malloc (Paho contract).
                unsafe { libc::free(buf.cast()) };
            }
            return if self.contains_key(key)? {
                Err(PersistError::User(rc))
            } else {
                Ok(None)
            };
        }
        let n = usize::try_from(len).unwrap_or(0);
        let data = if buf.is_null() || n == 0 {
            Vec::new()
        } else {
            // SAFETY: the callback returned `len` readable bytes at `buf`.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), n) }.to_vec()
        };
        if !buf.is_null() {
            // SAFETY: malloc'd by the callback; ownership passed to the library (Paho frees
            // it the same way).
            unsafe { libc::free(buf.cast()) };
        }
        Ok(Some(data))
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        self.opened()?;
        let k = c_key(key)?;
        let Some(f) = self.p.premove else {
            return Err(PersistError::Closed);
        };
        // SAFETY: valid key for the call.
        let rc = unsafe { f(self.handle, k.as_ptr() as *mut c_char) };
        if rc != 0 && self.contains_key(key)? {
            return Err(PersistError::User(rc));
        }
        Ok(())
    }

    fn keys(&mut self) -> Result<Vec<String>> {
        self.opened()?;
        let Some(f) = self.p.pkeys else {
            return Err(PersistError::Closed);
        };
        let mut keys: *mut *mut c_char = ptr::null_mut();
        let mut n: c_int = 0;
        // SAFETY: valid out-pointers for the call.
        let rc = unsafe { f(self.handle, &mut keys, &mut n) };
        let mut out = Vec::new();
        if !keys.is_null() {
            for i in 0..usize::try_from(n).unwrap_or(0) {
                // SAFETY: the callback returned an array of `n` malloc'd strings.
                let k = unsafe { *keys.add(i) };
                if k.is_null() {
                    continue;
                }
                // SAFETY: a NUL-terminated string from the callback.
                let s = unsafe { std::ffi::CStr::from_ptr(k) };
                if let Ok(s) = s.to_str() {
                    out.push(s.to_owned());
                }
                // SAFETY: malloc'd by the callback, freed once here (Paho does the same).
                unsafe { libc::free(k.cast()) };
            }
            // SAFETY: the array itself was malloc'd by the callback.
            unsafe { libc::free(keys.cast()) };
        }
        check(rc)?;
        Ok(out)
    }

    fn clear(&mut self) -> Result<()> {
        self.opened()?;
        let Some(f) = self.p.pclear else {
            return Err(PersistError::Closed);
        };
        // SAFETY: the open handle.
        check(unsafe { f(self.handle) })
    }

    fn contains_key(&mut self, key: &str) -> Result<bool> {
        self.opened()?;
        let k = c_key(key)?;
        let Some(f) = self.p.pcontainskey else {
            return Err(PersistError::Closed);
        };
        // SAFETY: valid key for the call.
        Ok(unsafe { f(self.handle, k.as_ptr() as *mut c_char) } == 0)
    }
}

struct SharedInner {
    store: Box<dyn Store>,
    opens: usize,
    /// The create arguments, shared with the handle (memory per handle).
    client_id: Arc<str>,
    server_uri: Arc<str>,
    /// Boxed: most handles set none (memory per handle).
    transforms: Option<Box<Transforms>>,
}

/// Paho's persistence transforms (`MQTTAsync_setBeforePersistenceWrite` /
/// `MQTTAsync_setAfterPersistenceRead`, e.g. to encrypt what is stored), with their
/// contexts.
#[derive(Clone, Copy)]
pub struct Transforms {
    /// Called with the record's buffers before it is written.
    pub before_write: MQTTPersistence_beforeWrite,
    /// Its context.
    pub write_context: *mut c_void,
    /// Called with a record's bytes after they are read.
    pub after_read: MQTTPersistence_afterRead,
    /// Its context.
    pub read_context: *mut c_void,
}

impl Default for Transforms {
    fn default() -> Self {
        Transforms {
            before_write: None,
            write_context: ptr::null_mut(),
            after_read: None,
            read_context: ptr::null_mut(),
        }
    }
}

// SAFETY: the contexts are the application's pointers, only handed back to its own
// callbacks (Paho calls them from its library threads too); never dereferenced here.
unsafe impl Send for Transforms {}

/// Copies `data` into a new malloc block (the transform callbacks may work in place).
fn malloc_copy(data: &[u8]) -> Result<*mut c_char> {
    super::ffi::c_bytes_dup(data).map_err(|_| PersistError::User(MQTTCLIENT_PERSISTENCE_ERROR))
}

/// Runs `before_write` on copies of `parts` and returns what it left (the callback may change
/// bytes in place, lengths, or put other malloc'd buffers in the array; only the library's
/// own copies are freed, as in Paho).
fn transform_write(t: &Transforms, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let Some(f) = t.before_write else {
        return Ok(parts.concat());
    };
    let mut bufs = Vec::with_capacity(parts.len());
    for p in parts {
        match malloc_copy(p) {
            Ok(b) => bufs.push(b),
            Err(e) => {
                for b in bufs {
                    // SAFETY: allocated just above with malloc.
                    unsafe { libc::free(b.cast()) };
                }
                return Err(e);
            }
        }
    }
    let ours = bufs.clone();
    let mut lens: Vec<c_int> = parts
        .iter()
        .map(|p| c_int::try_from(p.len()).unwrap_or(c_int::MAX))
        .collect();
    // SAFETY: the application's callback with its context; `bufs` and `lens` hold
    // `parts.len()` valid entries for the call.
    let rc = unsafe {
        f(
            t.write_context,
            bufs.len() as c_int,
            bufs.as_mut_ptr(),
            lens.as_mut_ptr(),
        )
    };
    let mut out = Vec::new();
    let mut bad = rc != 0;
    if !bad {
        for (b, &l) in bufs.iter().zip(&lens) {
            if l < 0 || (b.is_null() && l > 0) {
                bad = true;
                break;
            }
            if l > 0 {
                // SAFETY: the callback left `l` readable bytes at `b` (Paho's contract).
                out.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(b.cast::<u8>(), l as usize)
                });
            }
        }
    }
    for b in ours {
        // SAFETY: our own malloc'd copies; a buffer the callback put in their place is the
        // application's (Paho does not free it either).
        unsafe { libc::free(b.cast()) };
    }
    if bad {
        return Err(PersistError::User(if rc != 0 {
            rc
        } else {
            MQTTCLIENT_PERSISTENCE_ERROR
        }));
    }
    Ok(out)
}

/// Runs `after_read` on a malloc'd copy of `data` and returns what it left (the callback
/// may work in place or replace the buffer; the final buffer is freed, as in Paho).
fn transform_read(t: &Transforms, data: Vec<u8>) -> Result<Vec<u8>> {
    let Some(f) = t.after_read else {
        return Ok(data);
    };
    let mut buf = malloc_copy(&data)?;
    let mut len = c_int::try_from(data.len()).unwrap_or(c_int::MAX);
    // SAFETY: the application's callback with its context; buffer and length are valid
    // and writable for the call.
    let rc = unsafe { f(t.read_context, &mut buf, &mut len) };
    let out = if rc != 0 || len < 0 || (buf.is_null() && len > 0) {
        Err(PersistError::User(if rc != 0 {
            rc
        } else {
            MQTTCLIENT_PERSISTENCE_ERROR
        }))
    } else if len == 0 {
        Ok(Vec::new())
    } else {
        // SAFETY: the callback left `len` readable bytes at `buf`.
        Ok(unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len as usize) }.to_vec())
    };
    if !buf.is_null() {
        // SAFETY: a malloc'd buffer: ours, or the callback's replacement (Paho frees it).
        unsafe { libc::free(buf.cast()) };
    }
    out
}

/// One store shared by a C handle and every Rust client it creates. `open` and `close`
/// are counted: the underlying store is opened by the first `open` (always with the client
/// id and server URI given to `MQTTClient_create`, so the file layout is Paho's even when
/// `serverURIs` are used) and closed by the last `close`.
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<Mutex<SharedInner>>,
    /// The store's `is_durable`, read once: asked on every QoS 1/2 send, it must not wait
    /// for the lock behind a slow write.
    durable: bool,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore").finish_non_exhaustive()
    }
}

impl SharedStore {
    /// Wraps `store` for the client `client_id` of `server_uri` (the create arguments).
    pub fn new(store: Box<dyn Store>, client_id: Arc<str>, server_uri: Arc<str>) -> Self {
        SharedStore {
            durable: store.is_durable(),
            inner: Arc::new(Mutex::new(SharedInner {
                store,
                opens: 0,
                client_id,
                server_uri,
                transforms: None,
            })),
        }
    }

    /// Whether records are read through an `afterRead` transform (set after create: the
    /// handle's first reading, at create, could not decode what it protects).
    pub fn has_read_transform(&self) -> bool {
        self.lock()
            .transforms
            .as_ref()
            .is_some_and(|t| t.after_read.is_some())
    }

    /// Sets the write transform (NULL `f` removes it).
    pub fn set_before_write(&self, f: MQTTPersistence_beforeWrite, context: *mut c_void) {
        let mut g = self.lock();
        let t = g.transforms.get_or_insert_with(Default::default);
        t.before_write = f;
        t.write_context = context;
    }

    /// Sets the read transform (NULL `f` removes it).
    pub fn set_after_read(&self, f: MQTTPersistence_afterRead, context: *mut c_void) {
        let mut g = self.lock();
        let t = g.transforms.get_or_insert_with(Default::default);
        t.after_read = f;
        t.read_context = context;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The protocol family of the records a client of MQTT 5 (`v5`) or 3.x reads and writes.
pub fn family(v5: bool) -> crate::ProtocolVersion {
    if v5 {
        crate::ProtocolVersion::V5
    } else {
        crate::ProtocolVersion::V311
    }
}

impl SharedStore {
    /// Refuses a store holding in-flight records of the other MQTT version than the
    /// client's (`v5`): they could not be resent, and are not skipped silently (as Paho's
    /// create fails). True when the store is usable; false after tracing the reason and
    /// closing the store.
    pub fn version_ok(&mut self, v5: bool) -> bool {
        match crate::persist::check_version(self, family(v5)) {
            Ok(()) => true,
            Err(e) => {
                super::trace::trace(
                    super::types::enums::MQTTCLIENT_TRACE_ERROR,
                    &format!("mqttsync: {e}"),
                );
                let _ = self.close();
                false
            }
        }
    }
}

impl Store for SharedStore {
    fn is_durable(&self) -> bool {
        self.durable
    }

    fn open(&mut self, _client_id: &str, _server_uri: &str) -> Result<()> {
        let mut g = self.lock();
        if g.opens == 0 {
            let (cid, uri) = (g.client_id.clone(), g.server_uri.clone());
            g.store.open(&cid, &uri)?;
        }
        g.opens += 1;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let mut g = self.lock();
        match g.opens {
            0 => Ok(()),
            1 => {
                g.opens = 0;
                g.store.close()
            }
            _ => {
                g.opens -= 1;
                Ok(())
            }
        }
    }

    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<()> {
        let mut g = self.lock();
        match g.transforms.as_deref() {
            Some(t) if t.before_write.is_some() => {
                let data = transform_write(t, parts)?;
                g.store.put(key, &[&data])
            }
            _ => g.store.put(key, parts),
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut g = self.lock();
        let data = g.store.get(key)?;
        match (data, g.transforms.as_deref()) {
            (Some(data), Some(t)) if t.after_read.is_some() => transform_read(t, data).map(Some),
            (other, _) => Ok(other),
        }
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        self.lock().store.remove(key)
    }

    fn keys(&mut self) -> Result<Vec<String>> {
        self.lock().store.keys()
    }

    fn clear(&mut self) -> Result<()> {
        self.lock().store.clear()
    }

    fn contains_key(&mut self, key: &str) -> Result<bool> {
        self.lock().store.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::MemoryStore;

    unsafe extern "C" fn xor_write(
        ctx: *mut c_void,
        n: c_int,
        bufs: *mut *mut c_char,
        lens: *mut c_int,
    ) -> c_int {
        assert_eq!(ctx as usize, 7);
        for i in 0..n as usize {
            // SAFETY: the library passes n valid buffers of the given lengths.
            unsafe {
                let b = *bufs.add(i);
                for j in 0..*lens.add(i) as usize {
                    *b.add(j) ^= 0x5a;
                }
            }
        }
        0
    }

    unsafe extern "C" fn xor_read(
        ctx: *mut c_void,
        buf: *mut *mut c_char,
        len: *mut c_int,
    ) -> c_int {
        assert_eq!(ctx as usize, 8);
        // Replaces the buffer, as an application may: the library frees the new one.
        // SAFETY: the library passes a valid malloc'd buffer of `*len` bytes.
        unsafe {
            let n = *len as usize;
            let out = libc::malloc(n.max(1)).cast::<c_char>();
            for j in 0..n {
                *out.add(j) = *(*buf).add(j) ^ 0x5a;
            }
            libc::free((*buf).cast());
            *buf = out;
        }
        0
    }

    unsafe extern "C" fn refuse(
        _: *mut c_void,
        _: c_int,
        _: *mut *mut c_char,
        _: *mut c_int,
    ) -> c_int {
        -7
    }

    #[test]
    fn persistence_transforms_apply_on_write_and_read() {
        let mut s = SharedStore::new(Box::new(MemoryStore::new()), "c".into(), "tcp://h:1".into());
        s.open("c", "tcp://h:1").unwrap();
        s.set_before_write(Some(xor_write), 7 as *mut c_void);
        s.put("s-1", &[b"hello ", b"world"]).unwrap();
        // Stored transformed: without the read transform the bytes differ.
        let raw = s.get("s-1").unwrap().unwrap();
        assert_eq!(raw.len(), 11);
        assert_ne!(raw, b"hello world");
        s.set_after_read(Some(xor_read), 8 as *mut c_void);
        assert_eq!(s.get("s-1").unwrap().unwrap(), b"hello world");
        // A refusing write transform fails the write with its code; nothing is stored.
        s.set_before_write(Some(refuse), ptr::null_mut());
        assert!(matches!(s.put("s-2", &[b"x"]), Err(PersistError::User(-7))));
        assert_eq!(s.get("s-2").unwrap(), None);
        // Removed: plain again.
        s.set_before_write(None, ptr::null_mut());
        s.set_after_read(None, ptr::null_mut());
        s.put("s-3", &[b"plain"]).unwrap();
        assert_eq!(s.get("s-3").unwrap().unwrap(), b"plain");
    }

    #[test]
    fn shared_store_counts_opens() {
        let mut a = SharedStore::new(Box::new(MemoryStore::new()), "c".into(), "tcp://h:1".into());
        let mut b = a.clone();
        a.open("ignored", "ignored").unwrap();
        b.open("x", "y").unwrap();
        a.put("s-1", &[b"ab", b"c"]).unwrap();
        a.close().unwrap();
        // Still open through b.
        assert_eq!(b.get("s-1").unwrap().as_deref(), Some(&b"abc"[..]));
        b.close().unwrap();
        assert!(b.get("s-1").is_err());
    }

    #[test]
    fn user_store_needs_all_callbacks() {
        let p = MQTTClient_persistence {
            context: ptr::null_mut(),
            popen: None,
            pclose: None,
            pput: None,
            pget: None,
            premove: None,
            pkeys: None,
            pclear: None,
            pcontainskey: None,
        };
        assert!(unsafe { UserStore::new(&p) }.is_none());
        assert!(unsafe { UserStore::new(ptr::null()) }.is_none());
    }
}
