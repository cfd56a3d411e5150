//! The header line: `TYPE PROG.PROC serial=N [status=S] [vers=V] [async]`, each of type, program,
//! procedure and status by name (`REPLY`, `remote`, `CONNECT_OPEN`, `OK`) or, when there is no name,
//! by number (`7`, `0x12345678`, `9999`).

use std::fmt;

use serde_json::Value;

/// A header field by name or by number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Sym {
    /// By name (`CONNECT_OPEN`).
    Name(String),
    /// By number (`9999`; programs are written in hex, `0x12345678`).
    Num(i64),
}

impl Sym {
    /// Parse a token: a number (decimal, optionally negative, or `0x` hex) or a name (letters,
    /// digits and `_`, not starting with a digit).
    pub fn parse(tok: &str) -> Option<Sym> {
        if let Some(n) = parse_int(tok) {
            return Some(Sym::Num(n));
        }
        let mut chars = tok.chars();
        let first = chars.next()?;
        if (first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            Some(Sym::Name(tok.to_string()))
        } else {
            None
        }
    }

    /// True when the actual header (message JSON's `header` object) has this value, compared by name
    /// in `name_key` or by number in `num_key`.
    pub fn matches(&self, actual: &Value, num_key: &str, name_key: &str) -> bool {
        match self {
            Sym::Name(n) => actual.get(name_key).and_then(Value::as_str) == Some(n.as_str()),
            Sym::Num(n) => actual.get(num_key).and_then(Value::as_i64) == Some(*n),
        }
    }

    /// From a message JSON header: the name in `name_key` if there is one, else the number.
    fn from_json(h: &Value, num_key: &str, name_key: &str) -> Option<Sym> {
        match h.get(name_key).and_then(Value::as_str) {
            Some(n) if Sym::parse(n) == Some(Sym::Name(n.to_string())) => {
                Some(Sym::Name(n.to_string()))
            }
            _ => h.get(num_key).and_then(Value::as_i64).map(Sym::Num),
        }
    }

    fn fmt_with(&self, f: &mut fmt::Formatter<'_>, hex: bool) -> fmt::Result {
        match self {
            Sym::Name(n) => f.write_str(n),
            Sym::Num(n) if hex && (0..=i64::from(u32::MAX)).contains(n) => write!(f, "{n:#010x}"),
            Sym::Num(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(f, false)
    }
}

/// A decimal (optionally negative) or `0x` hexadecimal integer.
pub(crate) fn parse_int(tok: &str) -> Option<i64> {
    let (neg, digits) = match tok.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, tok),
    };
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        i64::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// A message's header, symbolically.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeaderLine {
    /// Message type (`CALL`, `REPLY`, `MESSAGE`, `STREAM`, …).
    pub msg_type: Sym,
    /// Program (`remote`, `qemu`, `keepalive`, or a number).
    pub prog: Sym,
    /// Procedure (`CONNECT_OPEN`, or a number).
    pub procedure: Sym,
    /// Program version (written only when not 1).
    pub vers: u32,
    /// Serial, as recorded (a replay rewrites it).
    pub serial: u32,
    /// Status (`OK`, `ERROR`, `CONTINUE`).
    pub status: Sym,
}

impl HeaderLine {
    /// The header of a message JSON (`header` object of `crate::wire::frames::message_json`).
    pub fn from_message_json(msg: &Value) -> Option<HeaderLine> {
        let h = msg.get("header")?;
        Some(HeaderLine {
            msg_type: Sym::from_json(h, "type", "type_name")?,
            prog: Sym::from_json(h, "prog", "prog_name")?,
            procedure: Sym::from_json(h, "proc", "proc_name")?,
            vers: u32::try_from(h.get("vers")?.as_u64()?).ok()?,
            serial: u32::try_from(h.get("serial")?.as_u64()?).ok()?,
            status: Sym::from_json(h, "status", "status_name")?,
        })
    }

    /// True when the message type is this name (or its number).
    pub fn type_is(&self, name: &str, number: i64) -> bool {
        match &self.msg_type {
            Sym::Name(n) => n == name,
            Sym::Num(n) => *n == number,
        }
    }

    /// The line's text after `> ` / `< `: the status is left out when `status_if_ok` is false and
    /// it is `OK` (the default when a line has none).
    pub fn render(&self, status_if_ok: bool) -> String {
        struct R<'a>(&'a HeaderLine, bool);
        impl fmt::Display for R<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let h = self.0;
                write!(f, "{} ", h.msg_type)?;
                h.prog.fmt_with(f, true)?;
                write!(f, ".{} serial={}", h.procedure, h.serial)?;
                let ok = h.status == Sym::Name("OK".into());
                if self.1 || !ok {
                    write!(f, " status={}", h.status)?;
                }
                if h.vers != 1 {
                    write!(f, " vers={}", h.vers)?;
                }
                Ok(())
            }
        }
        R(self, status_if_ok).to_string()
    }
}

impl fmt::Display for HeaderLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syms() {
        assert_eq!(
            Sym::parse("CONNECT_OPEN"),
            Some(Sym::Name("CONNECT_OPEN".into()))
        );
        assert_eq!(Sym::parse("0x12345678"), Some(Sym::Num(0x1234_5678)));
        assert_eq!(Sym::parse("-3"), Some(Sym::Num(-3)));
        assert_eq!(Sym::parse("9x"), None);
        assert_eq!(Sym::parse(""), None);
        assert_eq!(Sym::parse("a.b"), None);
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("99999999999999999999"), None);
    }

    #[test]
    fn from_json_prefers_names() {
        let j = serde_json::json!({"header": {"prog": 0x1234_5678u32, "prog_name": null, "vers": 1,
            "proc": 1, "proc_name": null, "type": 0, "type_name": "CALL", "serial": 4,
            "status": 0, "status_name": "OK"}});
        let h = HeaderLine::from_message_json(&j).unwrap();
        assert_eq!(h.render(false), "CALL 0x12345678.1 serial=4");
        assert_eq!(h.render(true), "CALL 0x12345678.1 serial=4 status=OK");
    }
}
