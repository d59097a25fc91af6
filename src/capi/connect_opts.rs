//! Reading what C programs pass in: the server URI scheme, the TLS options
//! (`MQTTClient_SSLOptions`, same layout as `MQTTAsync_SSLOptions`), the last will and the
//! persistence type. Shared by the `MQTTClient` and `MQTTAsync` functions; each reads only
//! the fields the structure's `struct_version` has and checks in Paho's order.

use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

use super::convert::properties_from_c;
use super::ffi::{bytes_from_c, copy_versioned, str_from_c};
use super::persistence::UserStore;
use super::types::enums::MQTTCLIENT_TRACE_ERROR;
use super::types::*;
use crate::persist::{FileStore, OneSpaceMemoryStore, Store};
use crate::{Message, QoS, TlsOptions, TlsVersion};

/// True for the URI schemes Paho accepts (`tcp`, `mqtt`, `ssl`, `mqtts`, `ws`, `wss`) and for
/// a URI without scheme (TCP).
pub fn known_scheme(uri: &str) -> bool {
    match uri.find("://") {
        None => true,
        // Paho does not know `tls://` (the Rust API accepts it).
        Some(i) => {
            crate::Scheme::from_name(&uri[..i]).is_some() && !uri[..i].eq_ignore_ascii_case("tls")
        }
    }
}

/// The URI without its `scheme://` (as Paho reports `serverURI` after a connect).
pub fn strip_scheme(uri: &str) -> &str {
    uri.find("://").map_or(uri, |i| &uri[i + 3..])
}

/// The poll-before-sleep budget of a waiting caller
/// ([`ConnectOptions::spin_wait`](crate::ConnectOptions::spin_wait)) from
/// `MQTTSYNC_SPIN_US` (microseconds, 0 turns it off), if that is set to a number; `None`
/// leaves the Rust API's default. Paho's structs have no field for it; read once per
/// process, when it also becomes the MQTTAsync command runners' budget for polling for
/// the next request.
pub(crate) fn spin_wait() -> Option<std::time::Duration> {
    static V: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        let d = std::env::var("MQTTSYNC_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_micros);
        if let Some(d) = d {
            crate::client::threads::set_runner_poll(d);
        }
        d
    })
}

/// A server URI as Paho reads it: a path after `host:port` means nothing for TCP and TLS
/// (Paho ignores it) and is dropped here; the Rust API refuses it as a likely mistake.
pub fn paho_server_uri(uri: &str) -> String {
    let (scheme, rest) = match uri.find("://") {
        Some(i) => (&uri[..i + 3], &uri[i + 3..]),
        None => ("", uri),
    };
    let websocket = matches!(
        crate::Scheme::from_name(scheme.trim_end_matches("://")),
        Some(crate::Scheme::Ws | crate::Scheme::Wss)
    );
    if websocket {
        return uri.to_owned();
    }
    match rest.find('/') {
        Some(i) => format!("{scheme}{}", &rest[..i]),
        None => uri.to_owned(),
    }
}

/// An optional C string from an options structure: NULL gives `None`.
pub(crate) fn opt_str(p: *const c_char) -> Result<Option<String>, c_int> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL C strings from the options are NUL-terminated (C contract).
    Ok(Some(unsafe { str_from_c(p)? }.to_owned()))
}

/// The WebSocket headers and HTTP proxies of a connect (`httpHeaders`, version 7 of both
/// APIs' connect options; `httpProxy` / `httpsProxy`, version 8), kept boxed by the caller
/// (most connects have none: memory per handle).
#[derive(Clone, Debug)]
pub struct WebParams {
    headers: Vec<(String, String)>,
    http_proxy: Option<String>,
    https_proxy: Option<String>,
}

impl WebParams {
    /// Reads them from options of `version`; `None` when none is set.
    ///
    /// # Safety
    /// `headers` is NULL or an array ending with an entry whose name is NULL; the strings
    /// are NULL or NUL-terminated.
    pub unsafe fn from_c(
        version: c_int,
        headers: *const MQTTClient_nameValue,
        http_proxy: *const c_char,
        https_proxy: *const c_char,
    ) -> Result<Option<Box<WebParams>>, c_int> {
        let mut w = WebParams {
            headers: Vec::new(),
            http_proxy: None,
            https_proxy: None,
        };
        if version >= 7 && !headers.is_null() {
            for i in 0.. {
                // SAFETY: the array ends with an entry whose name is NULL (C contract).
                let nv = unsafe { *headers.add(i) };
                if nv.name.is_null() {
                    break;
                }
                let name = opt_str(nv.name)?.unwrap_or_default();
                let value = opt_str(nv.value)?.unwrap_or_default();
                w.headers.push((name, value));
            }
        }
        if version >= 8 {
            w.http_proxy = opt_str(http_proxy)?;
            w.https_proxy = opt_str(https_proxy)?;
        }
        let any = !w.headers.is_empty() || w.http_proxy.is_some() || w.https_proxy.is_some();
        Ok(any.then(|| Box::new(w)))
    }

    /// `o` with them set.
    pub fn apply(&self, mut o: crate::ConnectOptions) -> crate::ConnectOptions {
        if !self.headers.is_empty() {
            o = o.http_headers(self.headers.clone());
        }
        if let Some(x) = &self.http_proxy {
            o = o.http_proxy(x);
        }
        if let Some(x) = &self.https_proxy {
            o = o.https_proxy(x);
        }
        o
    }
}

/// The `ssl_error_cb` of `MQTTClient_SSLOptions` (version 3+) and its context.
#[derive(Clone, Copy)]
pub struct SslErrorCb {
    /// The callback.
    pub cb: unsafe extern "C" fn(*const c_char, usize, *mut c_void) -> c_int,
    /// Its context.
    pub context: *mut c_void,
}

// SAFETY: the context is the application's opaque pointer, only handed back to its own
// callback (which Paho also calls from library threads); the callback is a plain C function.
unsafe impl Send for SslErrorCb {}
// SAFETY: as above; nothing is ever read or written through the pointer.
unsafe impl Sync for SslErrorCb {}

impl SslErrorCb {
    /// Calls the application's callback with `text` (NUL-terminated; `len` excludes the
    /// NUL), on the thread that called connect, as Paho does during its TLS connect.
    pub fn report(&self, text: &str) {
        let mut buf: Vec<u8> = text
            .bytes()
            .map(|b| if b == 0 { b' ' } else { b })
            .collect();
        let len = buf.len();
        buf.push(0);
        // SAFETY: a C function of the declared type given by the application with this
        // context; the buffer is NUL-terminated, `len` bytes long before the NUL, and lives
        // across the call. The return value (Paho: stop printing errors) has no use here.
        unsafe { (self.cb)(buf.as_ptr().cast::<c_char>(), len, self.context) };
    }
}

/// What `MQTTClient_SSLOptions` said: the TLS options and the error callback.
pub struct CTls {
    /// The TLS options for the Rust client.
    pub opts: TlsOptions,
    /// `ssl_error_cb` (struct version 3+).
    pub error_cb: Option<SslErrorCb>,
}

/// The `ssl_psk_cb` of `MQTTClient_SSLOptions` (version 4+) and its context.
pub(crate) struct CPsk {
    cb: unsafe extern "C" fn(
        *const c_char,
        *mut c_char,
        std::os::raw::c_uint,
        *mut std::os::raw::c_uchar,
        std::os::raw::c_uint,
        *mut c_void,
    ) -> std::os::raw::c_uint,
    context: *mut c_void,
}

// SAFETY: the context is the application's pointer, only ever handed back to its own
// callback, during a connect the application started (Paho's contract: the application
// keeps the context valid and usable while it connects).
unsafe impl Send for CPsk {}
// SAFETY: as above; the callback is called on one thread at a time (the connecting one).
unsafe impl Sync for CPsk {}

impl CPsk {
    /// Asks the application for the identity and key, with buffers of OpenSSL's sizes.
    fn ask(&self, hint: Option<&[u8]>) -> Option<(Vec<u8>, Vec<u8>)> {
        const ID_MAX: usize = crate::TlsPsk::MAX_IDENTITY_LEN;
        const KEY_MAX: usize = crate::TlsPsk::MAX_KEY_LEN;
        let hint = hint.map(|h| {
            let mut v: Vec<u8> = h.iter().copied().filter(|&b| b != 0).collect();
            v.push(0);
            v
        });
        let mut identity = vec![0u8; ID_MAX + 1];
        let mut key = vec![0u8; KEY_MAX];
        // SAFETY: a C function of the declared type given by the application with this
        // context; the hint is NULL or NUL-terminated; the identity buffer holds
        // ID_MAX + 1 bytes and the key buffer KEY_MAX, all alive across the call.
        let n = unsafe {
            (self.cb)(
                hint.as_ref()
                    .map_or(ptr::null(), |h| h.as_ptr().cast::<c_char>()),
                identity.as_mut_ptr().cast::<c_char>(),
                ID_MAX as std::os::raw::c_uint,
                key.as_mut_ptr(),
                KEY_MAX as std::os::raw::c_uint,
                self.context,
            )
        } as usize;
        if n == 0 || n > KEY_MAX {
            super::trace::trace(
                MQTTCLIENT_TRACE_ERROR,
                "mqttsync: ssl_psk_cb gave no pre-shared key (returned 0 or too long a key)",
            );
            return None;
        }
        identity[ID_MAX] = 0;
        let len = identity.iter().position(|&b| b == 0).unwrap_or(ID_MAX);
        identity.truncate(len);
        key.truncate(n);
        Some((identity, key))
    }
}

/// Reads `MQTTClient_SSLOptions` (versions 0-5).
///
/// Verification: `enableServerCertAuth = 1` (the default) verifies the certificate chain
/// and also the host name, whatever `verify` says (Paho skips the host name check when
/// `verify = 0`; mqttsync never silently verifies less than the certificate check
/// implies). `enableServerCertAuth = 0` turns both checks off explicitly.
/// A non-empty `enabledCipherSuites` becomes the cipher list, `ssl_psk_cb` the TLS-PSK
/// source; `ssl_error_cb` receives the text of TLS failures.
///
/// # Safety
/// `p` is NULL or points to SSL options of the version it declares, whose strings and
/// `protos` are readable.
pub unsafe fn tls_from_c(p: *const MQTTClient_SSLOptions) -> Result<CTls, c_int> {
    // SAFETY: non-NULL structure of its declared version (C contract).
    let (s, v) = unsafe { copy_versioned(p)? };
    let mut t = TlsOptions {
        ca_file: opt_str(s.trustStore)?.map(Into::into),
        client_cert: opt_str(s.keyStore)?.map(Into::into),
        client_key: opt_str(s.privateKey)?.map(Into::into),
        key_password: opt_str(s.privateKeyPassword)?,
        ..TlsOptions::default()
    };
    let verify = s.enableServerCertAuth != 0;
    t.verify_certificate = verify;
    t.verify_hostname = verify;
    if v >= 1 {
        t.min_version = match s.sslVersion {
            MQTT_SSL_VERSION_TLS_1_0 => Some(TlsVersion::Tls10),
            MQTT_SSL_VERSION_TLS_1_1 => Some(TlsVersion::Tls11),
            MQTT_SSL_VERSION_TLS_1_2 => Some(TlsVersion::Tls12),
            _ => None,
        };
    }
    if v >= 2 {
        t.ca_dir = opt_str(s.CApath)?.map(Into::into);
    }
    if v >= 4 && s.disableDefaultTrustStore != 0 {
        t.use_system_roots = false;
    }
    if v >= 5 && !s.protos.is_null() && s.protos_len > 0 {
        // SAFETY: protos points to protos_len readable bytes (C contract).
        let wire = unsafe { std::slice::from_raw_parts(s.protos, s.protos_len as usize) };
        let mut i = 0;
        while i < wire.len() {
            let n = wire[i] as usize;
            let end = (i + 1 + n).min(wire.len());
            t.alpn
                .push(String::from_utf8_lossy(&wire[i + 1..end]).into_owned());
            i = end;
        }
    }
    t.ciphers = opt_str(s.enabledCipherSuites)?.filter(|c| !c.trim().is_empty());
    if let (true, Some(cb)) = (v >= 4, s.ssl_psk_cb) {
        let c = CPsk {
            cb,
            context: s.ssl_psk_context,
        };
        t.psk = Some(crate::TlsPsk::from_callback(move |hint| c.ask(hint)));
    }
    let error_cb = match s.ssl_error_cb {
        Some(cb) if v >= 3 => Some(SslErrorCb {
            cb,
            context: s.ssl_error_context,
        }),
        _ => None,
    };
    Ok(CTls { opts: t, error_cb })
}

/// Reads `MQTTClient_willOptions` (versions 0-1; `MQTTAsync_willOptions` has the same
/// layout) and the will's MQTT 5 properties, in Paho's order of checks: structure, QoS
/// (`MQTTCLIENT_BAD_QOS`), topic (`MQTTCLIENT_NULL_PARAMETER`, `MQTTCLIENT_BAD_UTF8_STRING`,
/// `MQTTCLIENT_0_LEN_WILL_TOPIC`), payload (the string `message`, else the binary `payload`
/// of version 1).
///
/// # Safety
/// `will` points to will options of the version it declares, whose pointers are valid;
/// `will_props` is NULL or a valid property list.
pub unsafe fn will_from_c(
    will: *const MQTTClient_willOptions,
    will_props: *const MQTTProperties,
) -> Result<Message, c_int> {
    // SAFETY: non-NULL will options of their declared version (C contract).
    let (w, wv) = unsafe { copy_versioned(will)? };
    if !(0..=2).contains(&w.qos) {
        return Err(MQTTCLIENT_BAD_QOS);
    }
    if w.topicName.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    // SAFETY: NUL-terminated topic (C contract).
    let topic = unsafe { str_from_c(w.topicName)? };
    if topic.is_empty() {
        return Err(MQTTCLIENT_0_LEN_WILL_TOPIC);
    }
    let payload: Vec<u8> = if !w.message.is_null() {
        // SAFETY: NUL-terminated string (C contract).
        unsafe { std::ffi::CStr::from_ptr(w.message) }
            .to_bytes()
            .to_vec()
    } else if wv >= 1 {
        // SAFETY: payload.data has payload.len readable bytes (C contract).
        unsafe { bytes_from_c(w.payload.data, w.payload.len)? }.to_vec()
    } else {
        Vec::new()
    };
    let mut m = Message::new(topic, payload)
        .qos(QoS::from_u8(w.qos as u8).unwrap_or(QoS::AtMostOnce))
        .retain(w.retained != 0);
    if !will_props.is_null() {
        // SAFETY: a valid property list (C contract).
        m.properties = unsafe { properties_from_c(will_props)? };
    }
    Ok(m)
}

/// The store for a persistence type of `MQTTClient_create` / `MQTTAsync_create`:
/// `MQTTCLIENT_PERSISTENCE_DEFAULT` files under `context` (a directory name, "." when
/// NULL), `MQTTCLIENT_PERSISTENCE_NONE` memory, `MQTTCLIENT_PERSISTENCE_USER` the
/// application's `MQTTClient_persistence` given as `context`. An unknown type, an
/// unreadable directory name or an incomplete USER table gives
/// `MQTTCLIENT_PERSISTENCE_ERROR`. The store is not opened here.
///
/// # Safety
/// `context` is what the persistence type requires (NULL or a NUL-terminated string for
/// DEFAULT; an `MQTTClient_persistence` that outlives the store for USER).
pub unsafe fn store_from_c(
    persistence_type: c_int,
    context: *mut c_void,
) -> Result<Box<dyn Store>, c_int> {
    let store: Box<dyn Store> = match persistence_type {
        MQTTCLIENT_PERSISTENCE_DEFAULT => {
            let root = if context.is_null() {
                ".".to_owned()
            } else {
                // SAFETY: for DEFAULT the context is a NUL-terminated directory name.
                unsafe { str_from_c(context as *const c_char) }
                    .map_err(|_| MQTTCLIENT_PERSISTENCE_ERROR)?
                    .to_owned()
            };
            Box::new(FileStore::new(root))
        }
        MQTTCLIENT_PERSISTENCE_NONE => Box::<OneSpaceMemoryStore>::default(),
        MQTTCLIENT_PERSISTENCE_USER => {
            // SAFETY: for USER the context is an MQTTClient_persistence that outlives the
            // client (C contract).
            match unsafe { UserStore::new(context as *const MQTTClient_persistence) } {
                Some(s) => Box::new(s),
                None => return Err(MQTTCLIENT_PERSISTENCE_ERROR),
            }
        }
        _ => return Err(MQTTCLIENT_PERSISTENCE_ERROR),
    };
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    fn ssl_options(version: c_int) -> MQTTClient_SSLOptions {
        MQTTClient_SSLOptions {
            struct_id: [
                b'M' as c_char,
                b'Q' as c_char,
                b'T' as c_char,
                b'S' as c_char,
            ],
            struct_version: version,
            trustStore: c"/ca.pem".as_ptr(),
            keyStore: ptr::null(),
            privateKey: ptr::null(),
            privateKeyPassword: ptr::null(),
            enabledCipherSuites: ptr::null(),
            enableServerCertAuth: 1,
            sslVersion: MQTT_SSL_VERSION_TLS_1_2,
            verify: 0,
            CApath: c"/certs".as_ptr(),
            ssl_error_cb: None,
            ssl_error_context: ptr::null_mut(),
            ssl_psk_cb: None,
            ssl_psk_context: ptr::null_mut(),
            disableDefaultTrustStore: 1,
            protos: b"\x04mqtt\x02h2".as_ptr(),
            protos_len: 8,
        }
    }

    #[test]
    fn ssl_options_never_verify_less_than_asked() {
        // verify = 0 with enableServerCertAuth = 1: the host name is still checked.
        let s = ssl_options(5);
        let c = unsafe { tls_from_c(&s) }.unwrap();
        assert!(c.error_cb.is_none());
        let t = c.opts;
        assert!(t.ciphers.is_none() && t.psk.is_none());
        assert!(t.verify_certificate && t.verify_hostname);
        assert_eq!(t.ca_file.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert_eq!(t.ca_dir.as_deref(), Some(std::path::Path::new("/certs")));
        assert!(!t.use_system_roots);
        assert_eq!(t.alpn, ["mqtt", "h2"]);
        assert_eq!(t.min_version, Some(TlsVersion::Tls12));
        // Turning certificate checks off is explicit and turns both off.
        let mut s = ssl_options(5);
        s.enableServerCertAuth = 0;
        let t = unsafe { tls_from_c(&s) }.unwrap().opts;
        assert!(!t.verify_certificate && !t.verify_hostname);
        // Fields newer than the declared version are not read.
        let s = ssl_options(1);
        let t = unsafe { tls_from_c(&s) }.unwrap().opts;
        assert!(t.ca_dir.is_none() && t.use_system_roots && t.alpn.is_empty());
        let mut s = ssl_options(6);
        s.struct_version = 6;
        assert!(matches!(
            unsafe { tls_from_c(&s) },
            Err(MQTTCLIENT_BAD_STRUCTURE)
        ));
    }

    unsafe extern "C" fn ssl_error(_s: *const c_char, _len: usize, _u: *mut c_void) -> c_int {
        1
    }

    /// Writes identity "id-<u as byte>" and a 3-byte key.
    unsafe extern "C" fn psk(
        hint: *const c_char,
        identity: *mut c_char,
        max_identity_len: std::os::raw::c_uint,
        psk: *mut std::os::raw::c_uchar,
        max_psk_len: std::os::raw::c_uint,
        u: *mut c_void,
    ) -> std::os::raw::c_uint {
        assert!(max_identity_len >= 8 && max_psk_len >= 3);
        // SAFETY: test callback; hint NULL or a C string, buffers as large as announced.
        unsafe {
            assert!(hint.is_null() || std::ffi::CStr::from_ptr(hint).to_bytes() == b"h1");
            let id = format!("id-{}\0", u as usize);
            std::ptr::copy_nonoverlapping(id.as_ptr().cast::<c_char>(), identity, id.len());
            std::ptr::copy_nonoverlapping([1u8, 2, 3].as_ptr(), psk, 3);
        }
        3
    }

    #[test]
    fn ssl_options_cipher_list_and_psk_are_passed_on() {
        let mut s = ssl_options(5);
        s.enabledCipherSuites = c"".as_ptr();
        assert!(unsafe { tls_from_c(&s) }.unwrap().opts.ciphers.is_none());
        s.enabledCipherSuites = c"HIGH:!aNULL".as_ptr();
        let c = unsafe { tls_from_c(&s) }.unwrap();
        assert_eq!(c.opts.ciphers.as_deref(), Some("HIGH:!aNULL"));
        // Even in a version 0 structure.
        s.struct_version = 0;
        let c = unsafe { tls_from_c(&s) }.unwrap();
        assert_eq!(c.opts.ciphers.as_deref(), Some("HIGH:!aNULL"));

        let mut s = ssl_options(4);
        s.ssl_psk_cb = Some(psk);
        s.ssl_psk_context = 7 as *mut c_void;
        let p = unsafe { tls_from_c(&s) }.unwrap().opts.psk.expect("psk");
        let want = Some((b"id-7".to_vec(), vec![1, 2, 3]));
        assert_eq!(p.credentials(Some(b"h1")), want);
        assert_eq!(p.credentials(None), want);
        // ... but not read from a version 3 structure, where the field does not exist.
        s.struct_version = 3;
        s.ssl_error_cb = Some(ssl_error);
        let c = unsafe { tls_from_c(&s) }.unwrap();
        assert!(c.opts.psk.is_none() && c.error_cb.is_some());
        s.struct_version = 2;
        assert!(unsafe { tls_from_c(&s) }.unwrap().error_cb.is_none());
    }

    #[test]
    fn scheme_check_matches_paho() {
        for ok in [
            "tcp://h:1",
            "mqtt://h",
            "ssl://h",
            "mqtts://h",
            "ws://h",
            "wss://h",
            "h:1",
        ] {
            assert!(known_scheme(ok), "{ok}");
        }
        assert!(!known_scheme("foo://h"));
        assert_eq!(strip_scheme("tcp://h:1"), "h:1");
    }
}
