//! A small EDN reader: enough of the format for Jepsen histories.
//!
//! Supports nil, booleans, integers (with an `N` suffix), floats (with an
//! `M` suffix, `##Inf`, `##-Inf`, `##NaN`), ratios (read as floats),
//! strings, characters, keywords, symbols, lists, vectors, maps, sets,
//! comments (`;`), discards (`#_`), metadata (`^`, skipped) and tagged
//! literals (`#inst "..."`, `#jepsen.history.Op{...}`), which keep their tag
//! and their form. Every node remembers its line and column.

use std::fmt;

/// A position in the input, both 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One EDN value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub v: Edn,
}

/// EDN values.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64, as written (without an `N`).
    BigInt(String),
    Float(f64),
    Str(String),
    Char(char),
    /// Without the leading colon.
    Keyword(String),
    Symbol(String),
    List(Vec<Node>),
    Vector(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Set(Vec<Node>),
    Tagged(String, Box<Node>),
}

impl Edn {
    /// A short name of the kind of value, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Edn::Nil => "nil",
            Edn::Bool(_) => "a boolean",
            Edn::Int(_) | Edn::BigInt(_) => "an integer",
            Edn::Float(_) => "a float",
            Edn::Str(_) => "a string",
            Edn::Char(_) => "a character",
            Edn::Keyword(_) => "a keyword",
            Edn::Symbol(_) => "a symbol",
            Edn::List(_) => "a list",
            Edn::Vector(_) => "a vector",
            Edn::Map(_) => "a map",
            Edn::Set(_) => "a set",
            Edn::Tagged(..) => "a tagged literal",
        }
    }

    /// Elements of a list, vector or set.
    pub fn items(&self) -> Option<&[Node]> {
        match self {
            Edn::List(v) | Edn::Vector(v) | Edn::Set(v) => Some(v),
            _ => None,
        }
    }
}

fn write_seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Node], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, n) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{}", n.v)?;
    }
    f.write_str(close)
}

/// Prints EDN text back (strings escaped, maps in input order).
impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::BigInt(s) => write!(f, "{s}N"),
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(v) => write_seq(f, "(", v, ")"),
            Edn::Vector(v) => write_seq(f, "[", v, "]"),
            Edn::Set(v) => write_seq(f, "#{", v, "}"),
            Edn::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {}", k.v, v.v)?;
                }
                f.write_str("}")
            }
            Edn::Tagged(t, n) => write!(f, "#{t} {}", n.v),
        }
    }
}

/// A syntax error at a position.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Reads top-level forms one at a time.
pub struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    line: usize,
    col: usize,
}

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
        )
}

fn opener(close: u8) -> char {
    match close {
        b')' => '(',
        b']' => '[',
        _ => '{',
    }
}

/// Nesting deeper than this is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 512;

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            s: text.as_bytes(),
            text,
            i: 0,
            line: 1,
            col: 1,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.col,
        }
    }

    fn err<T>(&self, pos: Pos, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            pos,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            // count characters, not UTF-8 continuation bytes
            self.col += 1;
        }
        Some(b)
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.bump();
            } else if b == b';' {
                while let Some(b) = self.bump() {
                    if b == b'\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    /// Byte offset of the next unread character.
    pub fn offset(&self) -> usize {
        self.i
    }

    /// Skips whitespace, commas and comments.
    pub fn skip_blank(&mut self) {
        self.skip_ws();
    }

    /// The next top-level form, or `None` at the end of the input.
    pub fn next_form(&mut self) -> Result<Option<Node>, SyntaxError> {
        loop {
            self.skip_ws();
            if self.peek().is_none() {
                return Ok(None);
            }
            if let Some(n) = self.form(0)? {
                return Ok(Some(n));
            }
        }
    }

    /// Reads one form; `None` when it was a discard (`#_ x`) or metadata.
    fn form(&mut self, depth: usize) -> Result<Option<Node>, SyntaxError> {
        if depth > MAX_DEPTH {
            return self.err(
                self.pos(),
                format!("nesting deeper than {MAX_DEPTH} levels"),
            );
        }
        self.skip_ws();
        let pos = self.pos();
        let Some(b) = self.peek() else {
            return self.err(pos, "unexpected end of input, expected a value");
        };
        let v = match b {
            b'(' => {
                self.bump();
                Edn::List(self.seq(b')', pos, depth)?)
            }
            b'[' => {
                self.bump();
                Edn::Vector(self.seq(b']', pos, depth)?)
            }
            b'{' => {
                self.bump();
                self.map(pos, depth)?
            }
            b')' | b']' | b'}' => return self.err(pos, format!("unmatched '{}'", b as char)),
            b'"' => Edn::Str(self.string()?),
            b'\\' => Edn::Char(self.character()?),
            b':' => {
                self.bump();
                let t = self.token();
                if t.is_empty() {
                    return self.err(pos, "a keyword needs a name after ':'");
                }
                Edn::Keyword(t.trim_start_matches(':').to_string())
            }
            b'^' => {
                self.bump();
                self.form(depth + 1)?; // metadata: read and drop
                return Ok(None);
            }
            b'#' => return self.dispatch(pos, depth),
            _ => self.atom(pos)?,
        };
        Ok(Some(Node { pos, v }))
    }

    fn dispatch(&mut self, pos: Pos, depth: usize) -> Result<Option<Node>, SyntaxError> {
        self.bump();
        match self.peek() {
            Some(b'{') => {
                self.bump();
                let items = self.seq(b'}', pos, depth)?;
                Ok(Some(Node {
                    pos,
                    v: Edn::Set(items),
                }))
            }
            Some(b'_') => {
                self.bump();
                self.form(depth + 1)?;
                Ok(None)
            }
            Some(b'#') => {
                self.bump();
                let t = self.token();
                let x = match t {
                    "Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    "NaN" => f64::NAN,
                    other => return self.err(pos, format!("unknown symbolic value ##{other}")),
                };
                Ok(Some(Node {
                    pos,
                    v: Edn::Float(x),
                }))
            }
            Some(b) if b.is_ascii_alphabetic() => {
                let tag = self.token().to_string();
                let inner = loop {
                    match self.form(depth + 1)? {
                        Some(n) => break n,
                        None => continue,
                    }
                };
                Ok(Some(Node {
                    pos,
                    v: Edn::Tagged(tag, Box::new(inner)),
                }))
            }
            Some(b) => self.err(pos, format!("unsupported dispatch '#{}'", b as char)),
            None => self.err(pos, "unexpected end of input after '#'"),
        }
    }

    fn seq(&mut self, close: u8, open: Pos, depth: usize) -> Result<Vec<Node>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return self.err(
                        open,
                        format!("'{}' opened here is never closed", opener(close)),
                    )
                }
                Some(b) if b == close => {
                    self.bump();
                    return Ok(out);
                }
                Some(b @ (b')' | b']' | b'}')) => {
                    let at = self.pos();
                    return self.err(
                        open,
                        format!(
                            "'{}' opened here is closed by '{}' at line {} column {}",
                            opener(close),
                            b as char,
                            at.line,
                            at.column
                        ),
                    );
                }
                Some(_) => {
                    if let Some(n) = self.form(depth + 1)? {
                        out.push(n);
                    }
                }
            }
        }
    }

    fn map(&mut self, open: Pos, depth: usize) -> Result<Edn, SyntaxError> {
        let items = self.seq(b'}', open, depth)?;
        if items.len() % 2 == 1 {
            return self.err(
                open,
                "a map needs an even number of forms (a key without a value)",
            );
        }
        let mut m = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            m.push((k, v));
        }
        Ok(Edn::Map(m))
    }

    /// A run of non-delimiter characters.
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while let Some(b) = self.peek() {
            if is_delim(b) {
                break;
            }
            self.bump();
        }
        &self.text[start..self.i]
    }

    fn atom(&mut self, pos: Pos) -> Result<Edn, SyntaxError> {
        let t = self.token();
        if t.is_empty() {
            return self.err(
                pos,
                format!("unexpected character {:?}", self.peek().map(|b| b as char)),
            );
        }
        let first = t.as_bytes()[0];
        let numeric = first.is_ascii_digit()
            || ((first == b'-' || first == b'+')
                && t.len() > 1
                && t.as_bytes()[1].is_ascii_digit());
        if !numeric {
            return Ok(match t {
                "nil" => Edn::Nil,
                "true" => Edn::Bool(true),
                "false" => Edn::Bool(false),
                s => Edn::Symbol(s.to_string()),
            });
        }
        let bad = |r: &Self| r.err(pos, format!("malformed number {t:?}"));
        if let Some(int) = t.strip_suffix('N') {
            return match int.parse::<i64>() {
                Ok(i) => Ok(Edn::Int(i)),
                Err(_)
                    if int
                        .trim_start_matches(['+', '-'])
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
                {
                    Ok(Edn::BigInt(int.trim_start_matches('+').to_string()))
                }
                Err(_) => bad(self),
            };
        }
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Edn::Int(i));
        }
        if t.trim_start_matches(['+', '-'])
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            return Ok(Edn::BigInt(t.trim_start_matches('+').to_string()));
        }
        if let Some((n, d)) = t.split_once('/') {
            return match (n.parse::<f64>(), d.parse::<f64>()) {
                (Ok(n), Ok(d)) if d != 0.0 => Ok(Edn::Float(n / d)),
                _ => bad(self),
            };
        }
        match t.strip_suffix('M').unwrap_or(t).parse::<f64>() {
            Ok(x) => Ok(Edn::Float(x)),
            Err(_) => bad(self),
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let open = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.bump();
            }
            out.push_str(&self.text[start..self.i]);
            let here = self.pos();
            match self.bump() {
                None => return self.err(open, "string opened here is never closed"),
                Some(b'"') => return Ok(out),
                Some(_) => {
                    let c = match self.bump() {
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'u') => self.hex4(here)?,
                        other => {
                            return self.err(
                                here,
                                format!("unknown escape '\\{}'", other.map_or('?', |b| b as char)),
                            )
                        }
                    };
                    out.push(c);
                }
            }
        }
    }

    fn hex4(&mut self, at: Pos) -> Result<char, SyntaxError> {
        let start = self.i;
        for _ in 0..4 {
            self.bump();
        }
        let h = self.text.get(start..self.i).unwrap_or("");
        u32::from_str_radix(h, 16)
            .ok()
            .and_then(char::from_u32)
            .map_or_else(|| self.err(at, format!("bad unicode escape \\u{h}")), Ok)
    }

    fn character(&mut self) -> Result<char, SyntaxError> {
        let pos = self.pos();
        self.bump();
        // The character right after the backslash, then any name.
        let start = self.i;
        let Some(first) = self.text[start..].chars().next() else {
            return self.err(pos, "a character literal needs a character after '\\'");
        };
        for _ in 0..first.len_utf8() {
            self.bump();
        }
        let rest = self.token();
        let name = &self.text[start..start + first.len_utf8() + rest.len()];
        Ok(match name {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            n if n.chars().count() == 1 => first,
            n if n.starts_with('u') && n.len() == 5 => u32::from_str_radix(&n[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .map_or_else(|| self.err(pos, format!("bad character \\{n}")), Ok)?,
            n => return self.err(pos, format!("unknown character literal \\{n}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Edn {
        Reader::new(s)
            .next_form()
            .expect("parses")
            .expect("a form")
            .v
    }

    #[test]
    fn scalars_read_as_their_kind() {
        assert_eq!(read("nil"), Edn::Nil);
        assert_eq!(read("true"), Edn::Bool(true));
        assert_eq!(read("-42"), Edn::Int(-42));
        assert_eq!(read("7N"), Edn::Int(7));
        assert_eq!(
            read("99999999999999999999"),
            Edn::BigInt("99999999999999999999".into())
        );
        assert_eq!(read("1.5"), Edn::Float(1.5));
        assert_eq!(read("2.5M"), Edn::Float(2.5));
        assert_eq!(read("1/4"), Edn::Float(0.25));
        assert_eq!(read(r#""a\"b\n\u0041""#), Edn::Str("a\"b\nA".into()));
        assert_eq!(read(r"\newline"), Edn::Char('\n'));
        assert_eq!(read(r"\x"), Edn::Char('x'));
        assert_eq!(read(":send"), Edn::Keyword("send".into()));
        assert_eq!(
            read(":jepsen.kafka/topic"),
            Edn::Keyword("jepsen.kafka/topic".into())
        );
        assert_eq!(read("foo"), Edn::Symbol("foo".into()));
        assert_eq!(read("##Inf"), Edn::Float(f64::INFINITY));
    }

    #[test]
    fn collections_comments_discards_and_tags_nest() {
        let v =
            read("{:a [1 (2 3) #{4}] ; comment\n :b #_ ignored #inst \"2024-01-01\" :c ^:meta d}");
        assert_eq!(
            v.to_string(),
            "{:a [1 (2 3) #{4}], :b #inst \"2024-01-01\", :c d}"
        );
        let Edn::Map(m) = read("{:a 1, :b 2}") else {
            panic!("a map")
        };
        assert_eq!(m.len(), 2);
        let Edn::Tagged(t, inner) = read("#jepsen.history.Op{:index 0}") else {
            panic!("tagged")
        };
        assert_eq!(t, "jepsen.history.Op");
        assert!(matches!(inner.v, Edn::Map(_)));
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let mut r = Reader::new("\n  [1\n   :x]");
        let n = r.next_form().unwrap().unwrap();
        assert_eq!(n.pos, Pos { line: 2, column: 3 });
        let Edn::Vector(v) = n.v else {
            panic!("vector")
        };
        assert_eq!(v[1].pos, Pos { line: 3, column: 4 });
    }

    #[test]
    fn syntax_errors_name_where_they_are() {
        let e = Reader::new("{:a 1\n :b [2 3}").next_form().unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 5 });
        assert!(
            e.message.contains("closed by '}' at line 2 column 9"),
            "{}",
            e.message
        );
        let e = Reader::new("  {:a}").next_form().unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 3 });
        assert!(e.message.contains("even number"));
        let e = Reader::new("\"abc").next_form().unwrap_err();
        assert!(e.message.contains("never closed"));
        let e = Reader::new("[1 2").next_form().unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 1 });
        let deep = "[".repeat(100_000);
        assert!(Reader::new(&deep)
            .next_form()
            .unwrap_err()
            .message
            .contains("nesting"));
    }
}
