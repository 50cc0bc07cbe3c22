//! The control socket's wire format (documented in docs/protocol.md): one JSON
//! document per line each way. A request is Fail2ban's command as a list of
//! strings (`["set", "custom", "banip", "192.0.2.7"]`); a reply is
//! `{"ok": VALUE}` or `{"error": {"kind": KIND, "message": TEXT}}`, VALUE being
//! what Fail2ban's transmitter returns, shaped as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest request line accepted, so that a client cannot make the server buffer without bound.
pub const MAX_REQUEST: usize = 16 << 20;

/// Why a command failed, in the categories fail2ban-client words differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// `Sorry but the jail 'x' does not exist`
    UnknownJail,
    /// `The jail 'x' already exists`
    DuplicateJail,
    /// `Sorry but the command is invalid`
    InvalidCommand,
    /// Anything else (bad value, failed action...): the message is printed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    /// For UnknownJail/DuplicateJail, the jail name; else a human-readable reason.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Ok(Value),
    Error(ErrorReply),
}

impl Reply {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Reply {
        Reply::Error(ErrorReply {
            kind,
            message: message.into(),
        })
    }
}

/// Writes one message as a line.
pub fn write_line<T: Serialize, W: Write>(w: &mut W, msg: &T) -> std::io::Result<()> {
    let mut buf = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    buf.push(b'\n');
    w.write_all(&buf)?;
    w.flush()
}

/// Parses one received line (without limits: see the readers).
fn parse<T: for<'de> Deserialize<'de>>(buf: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn too_long() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "message too long")
}

/// Writes one message as a line (the server's side).
pub async fn write_line_async<T: Serialize, W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &T,
) -> std::io::Result<()> {
    let mut buf = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    buf.push(b'\n');
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one message line (the server's side); Ok(None) at end of stream.
/// `buf` is reused between calls.
pub async fn read_line_async<T: for<'de> Deserialize<'de>, R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<T>> {
    buf.clear();
    let n = r
        .take(MAX_REQUEST as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_REQUEST {
        return Err(too_long());
    }
    parse(buf).map(Some)
}

/// Reads one message line; Ok(None) at end of stream.
pub fn read_line<T: for<'de> Deserialize<'de>, R: BufRead>(
    r: &mut R,
) -> std::io::Result<Option<T>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_REQUEST as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_REQUEST {
        return Err(too_long());
    }
    parse(&buf).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_round_trip_through_lines() {
        let mut wire = Vec::new();
        write_line(&mut wire, &Reply::Ok(json!(["192.0.2.7"]))).unwrap();
        write_line(&mut wire, &Reply::error(ErrorKind::UnknownJail, "nosuch")).unwrap();
        let text = String::from_utf8(wire.clone()).unwrap();
        assert_eq!(
            text,
            "{\"ok\":[\"192.0.2.7\"]}\n{\"error\":{\"kind\":\"unknown-jail\",\"message\":\"nosuch\"}}\n"
        );
        let mut r = std::io::BufReader::new(&wire[..]);
        assert_eq!(
            read_line::<Reply, _>(&mut r).unwrap(),
            Some(Reply::Ok(json!(["192.0.2.7"])))
        );
        assert_eq!(
            read_line::<Reply, _>(&mut r).unwrap(),
            Some(Reply::error(ErrorKind::UnknownJail, "nosuch"))
        );
        assert_eq!(read_line::<Reply, _>(&mut r).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut r = std::io::BufReader::new(&b"not json\n"[..]);
        assert!(read_line::<Vec<String>, _>(&mut r).is_err());
    }
}
