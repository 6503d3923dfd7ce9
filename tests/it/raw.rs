//! A raw HTTP/1.1 client for hostile requests: the exact bytes of the request
//! line, headers and body go on the wire, which reqwest would normalize or
//! refuse (NUL and non-UTF-8 header bytes, `..` in paths, no `Host`, a
//! declared length that lies, chunked bodies written by hand).
//!
//! One request per connection (`Connection: close`); the body is written from
//! a second thread while the answer is read, so a server that answers before
//! reading everything (413) cannot deadlock the test. Everything is bounded
//! by socket timeouts.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// A request, byte for byte.
#[derive(Debug, Clone)]
pub struct Raw {
    pub method: String,
    pub target: Vec<u8>,
    /// `None`: a `Host` naming the server is added; `Some(None)`: no `Host`.
    pub host: Option<Option<Vec<u8>>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Add `Content-Length` (off for hand-written chunked bodies).
    pub length: bool,
    pub version: &'static str,
    /// Write the body a byte at a time, this long apart.
    pub trickle: Option<Duration>,
}

impl Raw {
    pub fn new(method: &str, target: impl Into<Vec<u8>>) -> Raw {
        Raw {
            method: method.to_owned(),
            target: target.into(),
            host: None,
            headers: Vec::new(),
            body: Vec::new(),
            length: true,
            version: "HTTP/1.1",
            trickle: None,
        }
    }

    /// One more header, value as raw bytes.
    pub fn h(mut self, name: &str, value: impl Into<Vec<u8>>) -> Raw {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The `Host` header's value (`None`: no `Host` at all).
    pub fn host(mut self, value: Option<&[u8]>) -> Raw {
        self.host = Some(value.map(<[u8]>::to_vec));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Raw {
        self.body = body.into();
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, body: &serde_json::Value) -> Raw {
        self.h("Content-Type", "application/json")
            .body(body.to_string())
    }

    /// The same request with another method.
    pub fn method(mut self, method: &str) -> Raw {
        self.method = method.to_owned();
        self
    }

    /// The same request to another target, sent as is.
    pub fn target(mut self, target: &str) -> Raw {
        self.target = target.as_bytes().to_vec();
        self
    }

    /// A hand-written body: no `Content-Length` is added.
    pub fn no_length(mut self) -> Raw {
        self.length = false;
        self
    }

    /// Sends the body a byte at a time, `pause` apart.
    pub fn trickle(mut self, pause: Duration) -> Raw {
        self.trickle = Some(pause);
        self
    }

    fn bytes(&self, port: u16) -> (Vec<u8>, Vec<u8>) {
        self.bytes_with(port, "close")
    }

    fn bytes_with(&self, port: u16, connection: &str) -> (Vec<u8>, Vec<u8>) {
        let mut head = Vec::new();
        head.extend_from_slice(self.method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(&self.target);
        head.extend_from_slice(format!(" {}\r\n", self.version).as_bytes());
        match &self.host {
            None => head.extend_from_slice(format!("Host: 127.0.0.1:{port}\r\n").as_bytes()),
            Some(Some(h)) => {
                head.extend_from_slice(b"Host: ");
                head.extend_from_slice(h);
                head.extend_from_slice(b"\r\n");
            }
            Some(None) => {}
        }
        for (k, v) in &self.headers {
            head.extend_from_slice(k.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(v);
            head.extend_from_slice(b"\r\n");
        }
        if self.length && (!self.body.is_empty() || self.method == "POST") {
            head.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        head.extend_from_slice(format!("Connection: {connection}\r\n\r\n").as_bytes());
        (head, self.body.clone())
    }

    /// Sends the request to `127.0.0.1:port` and reads the answer.
    pub fn send(&self, port: u16) -> Answer {
        let (head, body) = self.bytes(port);
        let mut stream = match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => s,
            Err(e) => return Answer::Failed(format!("connect: {e}")),
        };
        let timeout = Some(Duration::from_secs(15));
        stream.set_read_timeout(timeout).unwrap();
        stream.set_write_timeout(timeout).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let trickle = self.trickle;
        // The server may answer (and stop reading) before the body is sent.
        let sender = std::thread::spawn(move || {
            writer.write_all(&head)?;
            match trickle {
                None => writer.write_all(&body)?,
                Some(pause) => {
                    for byte in body {
                        std::thread::sleep(pause);
                        writer.write_all(&[byte])?;
                    }
                }
            }
            writer.flush()
        });
        let mut got = Vec::new();
        let mut chunk = [0u8; 16384];
        let read_error = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => break Some(e.to_string()),
            }
        };
        let _ = sender.join();
        match parse(&got) {
            Some(answer) => answer,
            None => Answer::Failed(format!(
                "no complete HTTP answer ({} bytes read; {})",
                got.len(),
                read_error.unwrap_or_else(|| "closed".into())
            )),
        }
    }
}

/// One connection kept open across requests (`Connection: keep-alive`):
/// what a connection accepted earlier still gets.
pub struct KeptAlive {
    stream: TcpStream,
    port: u16,
}

impl KeptAlive {
    pub fn open(port: u16) -> KeptAlive {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("the server accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        KeptAlive { stream, port }
    }

    /// Sends `raw` (its body at once) and reads exactly one answer.
    pub fn send(&mut self, raw: &Raw) -> Answer {
        let (head, body) = raw.bytes_with(self.port, "keep-alive");
        if let Err(e) = self.stream.write_all(&[head, body].concat()) {
            return Answer::Failed(format!("write: {e}"));
        }
        let mut got = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            if let Some(answer) = parse(&got).filter(|a| complete(&got, a)) {
                return answer;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Answer::Failed(format!("closed after {} bytes", got.len())),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => return Answer::Failed(format!("read: {e}")),
            }
        }
    }
}

/// Whether `got` holds all of `answer`'s declared body (the parser takes a
/// missing body for a HEAD answer's).
fn complete(got: &[u8], answer: &Answer) -> bool {
    match answer {
        Answer::Http { body, .. } => answer
            .header("content-length")
            .and_then(|n| n.parse::<usize>().ok())
            .is_none_or(|n| body.len() == n && got.ends_with(body)),
        Answer::Failed(_) => true,
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub enum Answer {
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Connection refused or reset, or no parsable answer.
    Failed(String),
}

impl Answer {
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Http { status, .. } => Some(*status),
            Answer::Failed(_) => None,
        }
    }

    pub fn body_text(&self) -> String {
        match self {
            Answer::Http { body, .. } => String::from_utf8_lossy(body).into_owned(),
            Answer::Failed(e) => e.clone(),
        }
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        match self {
            Answer::Http { body, .. } => serde_json::from_slice(body).ok(),
            Answer::Failed(_) => None,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            Answer::Http { headers, .. } => headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
            Answer::Failed(_) => None,
        }
    }
}

fn parse(got: &[u8]) -> Option<Answer> {
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&got[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &got[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        match headers.iter().find(|(k, _)| k == "content-length") {
            // A HEAD answer declares a length and sends nothing.
            Some(_) if rest.is_empty() => Vec::new(),
            Some((_, n)) => rest.get(..n.parse::<usize>().ok()?)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Some(Answer::Http {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..eol]).ok()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

impl Raw {
    /// Adds the test credentials.
    pub fn auth(self) -> Raw {
        use base64::Engine as _;
        let creds = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            crate::util::USER,
            crate::util::PASSWORD
        ));
        self.h("Authorization", format!("Basic {creds}"))
    }
}
