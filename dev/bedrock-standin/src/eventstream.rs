//! Encoder for the AWS event-stream binary framing used by `ConverseStream`.
//!
//! A message is laid out as:
//!
//! ```text
//! [total length u32 BE][headers length u32 BE][prelude CRC32 u32 BE]
//! [headers ...][payload ...][message CRC32 u32 BE]
//! ```
//!
//! The prelude CRC covers the first 8 bytes; the message CRC covers everything
//! before it (prelude and prelude CRC included). Each header is
//! `[name length u8][name][type u8][value]`; this encoder only writes string
//! headers (type 7), whose value is `[length u16 BE][bytes]`, which is all
//! Bedrock uses.

use bytes::{BufMut, Bytes, BytesMut};

/// Size of the prelude (two lengths and the prelude CRC).
const PRELUDE_LEN: usize = 12;
/// Size of the trailing message CRC.
const MESSAGE_CRC_LEN: usize = 4;
/// Header value type tag for strings.
const TYPE_STRING: u8 = 7;
/// Longest string header value the AWS decoders accept.
const MAX_HEADER_VALUE_LEN: usize = i16::MAX as usize;

/// Why a message could not be framed: a header name or value, or the whole
/// message, is longer than the format allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A header name is longer than 255 bytes.
    HeaderNameTooLong(String),
    /// A header value is longer than 32767 bytes.
    HeaderValueTooLong(String),
    /// The framed message would not fit its u32 length field.
    MessageTooLong(usize),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HeaderNameTooLong(name) => write!(f, "event-stream header name too long: {name}"),
            Self::HeaderValueTooLong(name) => {
                write!(f, "event-stream header value too long for {name}")
            }
            Self::MessageTooLong(len) => write!(f, "event-stream message too long: {len} bytes"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Frames one event-stream message from string headers (name, value) and a
/// payload, computing both CRC32 checksums.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Result<Bytes, EncodeError> {
    let mut header_bytes = BytesMut::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len())
            .map_err(|_| EncodeError::HeaderNameTooLong(name.to_string()))?;
        if value.len() > MAX_HEADER_VALUE_LEN {
            return Err(EncodeError::HeaderValueTooLong(name.to_string()));
        }
        let value_len = u16::try_from(value.len())
            .map_err(|_| EncodeError::HeaderValueTooLong(name.to_string()))?;
        header_bytes.put_u8(name_len);
        header_bytes.put_slice(name.as_bytes());
        header_bytes.put_u8(TYPE_STRING);
        header_bytes.put_u16(value_len);
        header_bytes.put_slice(value.as_bytes());
    }

    let total = PRELUDE_LEN + header_bytes.len() + payload.len() + MESSAGE_CRC_LEN;
    let total_u32 = u32::try_from(total).map_err(|_| EncodeError::MessageTooLong(total))?;
    let headers_u32 =
        u32::try_from(header_bytes.len()).map_err(|_| EncodeError::MessageTooLong(total))?;

    let mut out = BytesMut::with_capacity(total);
    out.put_u32(total_u32);
    out.put_u32(headers_u32);
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.put_u32(prelude_crc);
    out.put_slice(&header_bytes);
    out.put_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.put_u32(message_crc);
    Ok(out.freeze())
}

/// Frames a Bedrock `ConverseStream` event: headers `:event-type` =
/// `event_type`, `:content-type` = `application/json`, `:message-type` =
/// `event`, with the event member's JSON as payload.
pub fn encode_event(event_type: &str, payload: &serde_json::Value) -> Result<Bytes, EncodeError> {
    let body = payload.to_string();
    encode_message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        body.as_bytes(),
    )
}

/// Frames a `ConverseStream` exception event: headers `:exception-type` =
/// `exception_type` (e.g. `throttlingException`), `:content-type` = `application/json`,
/// `:message-type` = `exception`, payload `{"message": ..}`.
pub fn encode_exception(exception_type: &str, message: &str) -> Result<Bytes, EncodeError> {
    let body = serde_json::json!({ "message": message }).to_string();
    encode_message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        body.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoded message: string headers and payload.
    type Decoded = (Vec<(String, String)>, Vec<u8>);

    fn u32_at(bytes: &[u8], at: usize) -> Result<u32, String> {
        let slice = bytes.get(at..at + 4).ok_or("truncated u32")?;
        let mut raw = [0u8; 4];
        raw.copy_from_slice(slice);
        Ok(u32::from_be_bytes(raw))
    }

    /// Independent decoder: checks lengths and both CRCs, reads string headers.
    fn decode(frame: &[u8]) -> Result<(Decoded, usize), String> {
        let total = u32_at(frame, 0)? as usize;
        let headers_len = u32_at(frame, 4)? as usize;
        if frame.len() < total || total < PRELUDE_LEN + MESSAGE_CRC_LEN + headers_len {
            return Err("bad lengths".into());
        }
        if crc32fast::hash(&frame[..8]) != u32_at(frame, 8)? {
            return Err("prelude crc mismatch".into());
        }
        if crc32fast::hash(&frame[..total - 4]) != u32_at(frame, total - 4)? {
            return Err("message crc mismatch".into());
        }
        let mut headers = Vec::new();
        let mut at = PRELUDE_LEN;
        let end = PRELUDE_LEN + headers_len;
        while at < end {
            let name_len = frame[at] as usize;
            let name = String::from_utf8(frame[at + 1..at + 1 + name_len].to_vec())
                .map_err(|e| e.to_string())?;
            at += 1 + name_len;
            if frame[at] != TYPE_STRING {
                return Err(format!("unexpected header type {}", frame[at]));
            }
            let value_len = u16::from_be_bytes([frame[at + 1], frame[at + 2]]) as usize;
            at += 3;
            let value =
                String::from_utf8(frame[at..at + value_len].to_vec()).map_err(|e| e.to_string())?;
            at += value_len;
            headers.push((name, value));
        }
        let payload = frame[end..total - 4].to_vec();
        Ok(((headers, payload), total))
    }

    #[test]
    fn known_frame_without_headers() {
        // Public AWS event-stream test vector "valid_no_headers".
        let expected: &[u8] = &[
            0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x51, 0x63, 0x56, 0xad, b'a', b'n',
            b'o', b't', b'h', b'e', b'r', b' ', b't', b'e', b's', b't', b' ', b'p', b'a', b'y',
            b'l', b'o', b'a', b'd', 0x8d, 0xf8, 0x0e, 0x65,
        ];
        let frame = encode_message(&[], b"another test payload").expect("encodes");
        assert_eq!(&frame[..], expected);
    }

    #[test]
    fn string_header_layout() {
        let frame = encode_message(&[("ab", "xyz")], b"{}").expect("encodes");
        // header: 1 + 2 + 1 + 2 + 3 = 9 bytes; total = 12 + 9 + 2 + 4 = 27.
        assert_eq!(u32_at(&frame, 0), Ok(27));
        assert_eq!(u32_at(&frame, 4), Ok(9));
        assert_eq!(u32_at(&frame, 8), Ok(crc32fast::hash(&frame[..8])));
        assert_eq!(&frame[12..21], &[2, b'a', b'b', 7, 0, 3, b'x', b'y', b'z']);
        assert_eq!(&frame[21..23], b"{}");
        assert_eq!(u32_at(&frame, 23), Ok(crc32fast::hash(&frame[..23])));
    }

    #[test]
    fn event_round_trip() {
        let payload = serde_json::json!({"contentBlockIndex": 0, "delta": {"text": "héllo"}});
        let first = encode_event("contentBlockDelta", &payload).expect("encodes");
        let second = encode_event(
            "messageStop",
            &serde_json::json!({"stopReason": "end_turn"}),
        )
        .expect("encodes");
        let mut stream = first.to_vec();
        stream.extend_from_slice(&second);

        let ((headers, body), used) = decode(&stream).expect("first decodes");
        assert_eq!(used, first.len());
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(header(":event-type").as_deref(), Some("contentBlockDelta"));
        assert_eq!(header(":content-type").as_deref(), Some("application/json"));
        assert_eq!(header(":message-type").as_deref(), Some("event"));
        let parsed: serde_json::Value = serde_json::from_slice(&body).expect("json payload");
        assert_eq!(parsed, payload);

        let ((headers, body), _) = decode(&stream[used..]).expect("second decodes");
        assert_eq!(headers[0].1, "messageStop");
        assert_eq!(body, br#"{"stopReason":"end_turn"}"#);
    }

    #[test]
    fn exception_frame_layout() {
        let frame = encode_exception("throttlingException", "slow down").expect("encodes");
        let ((headers, body), used) = decode(&frame).expect("decodes");
        assert_eq!(used, frame.len());
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(header(":message-type").as_deref(), Some("exception"));
        assert_eq!(
            header(":exception-type").as_deref(),
            Some("throttlingException")
        );
        assert_eq!(header(":content-type").as_deref(), Some("application/json"));
        assert_eq!(body, br#"{"message":"slow down"}"#);
    }

    #[test]
    fn corrupted_frame_is_detected() {
        let mut frame = encode_message(&[("a", "b")], b"payload")
            .expect("encodes")
            .to_vec();
        frame[14] ^= 0xff;
        assert_eq!(
            decode(&frame).map(|_| ()),
            Err("message crc mismatch".into())
        );
    }

    #[test]
    fn oversized_header_is_an_error() {
        let long_name = "n".repeat(256);
        assert!(matches!(
            encode_message(&[(&long_name, "v")], b""),
            Err(EncodeError::HeaderNameTooLong(_))
        ));
        let long_value = "v".repeat(MAX_HEADER_VALUE_LEN + 1);
        assert!(matches!(
            encode_message(&[("n", &long_value)], b""),
            Err(EncodeError::HeaderValueTooLong(_))
        ));
    }
}
