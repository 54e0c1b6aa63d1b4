//! Globs against globs: how a pattern in a request relates to a pattern in a rule.
//!
//! A request may name a set (`secret:/db/*`, actions `["*"]`). It is granted only if every
//! member it covers is allowed, and refused if any member is denied, so a rule's pattern `P` and
//! a request's pattern `R` are compared as sets of strings:
//!
//! - [`intersects`]: whether some string matches both. Exact.
//! - [`contains`]: whether every string `R` matches also matches `P`. Sound, not complete: when
//!   it says yes, that is true; it may say no for a few containments it cannot see (a rule then
//!   refuses a pattern that would have been safe, never grants one that reaches further).
//!
//! `*` matches any run of characters (including none), `?` exactly one; every other character
//! matches itself. Both run in time proportional to the product of the two lengths.

/// The outcome of a test that may not be decidable for a whole set: it holds for every member
/// (`Yes`), for none (`No`), or for some, or the agent could not tell (`Maybe`). Ordered so that
/// `and` is the smaller and `or` the larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tri {
    /// Holds for no member.
    No,
    /// Holds for some members, or unknown.
    Maybe,
    /// Holds for every member.
    Yes,
}

impl Tri {
    /// `Yes` or `No` from a plain truth.
    pub fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    /// Both hold.
    pub fn and(self, other: Tri) -> Tri {
        self.min(other)
    }

    /// One holds.
    pub fn or(self, other: Tri) -> Tri {
        self.max(other)
    }

    /// `or` over an iterator (`No` when it is empty).
    pub fn any(it: impl IntoIterator<Item = Tri>) -> Tri {
        it.into_iter().fold(Tri::No, Tri::or)
    }

    /// `and` over an iterator (`Yes` when it is empty).
    pub fn all(it: impl IntoIterator<Item = Tri>) -> Tri {
        it.into_iter().fold(Tri::Yes, Tri::and)
    }
}

impl std::ops::Not for Tri {
    type Output = Tri;

    /// The opposite (`Maybe` stays `Maybe`).
    fn not(self) -> Tri {
        match self {
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
            Tri::Yes => Tri::No,
        }
    }
}

fn wild(c: char) -> bool {
    c == '*' || c == '?'
}

/// The pattern as symbols, each run of pattern characters rewritten as its `?`s followed by
/// at most one `*` (`*?*` and `?*` match the same strings), so that [`Glob::contains`] sees
/// more.
fn symbols(p: &str) -> Vec<char> {
    fn flush(out: &mut Vec<char>, questions: &mut usize, star: &mut bool) {
        out.extend(std::iter::repeat_n('?', *questions));
        if *star {
            out.push('*');
        }
        (*questions, *star) = (0, false);
    }
    let mut out = Vec::with_capacity(p.len());
    let (mut questions, mut star) = (0, false);
    for c in p.chars() {
        match c {
            '?' => questions += 1,
            '*' => star = true,
            c => {
                flush(&mut out, &mut questions, &mut star);
                out.push(c);
            }
        }
    }
    flush(&mut out, &mut questions, &mut star);
    out
}

/// A pattern compiled once, to be compared with many others: its symbols, its literal head
/// (the text before the first pattern character) and tail (after the last), and whether it is
/// one of the shapes with a cheaper answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    symbols: Vec<char>,
    /// Byte ranges of the literal head and tail; both the whole text without a pattern
    /// character.
    head: usize,
    tail: usize,
    /// No pattern character.
    literal: bool,
    /// A literal followed by one `*` (`secret:/db/*`), the shape of most rules.
    prefix: bool,
}

impl Glob {
    /// Compiles `text`.
    pub fn new(text: &str) -> Glob {
        let (head, tail) = match (text.find(wild), text.rfind(wild)) {
            (Some(h), Some(t)) => (h, t + 1),
            _ => (text.len(), 0),
        };
        Glob {
            text: text.to_string(),
            symbols: symbols(text),
            head,
            tail,
            literal: head == text.len(),
            prefix: head + 1 == text.len() && text.ends_with('*'),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn head(&self) -> &str {
        &self.text[..self.head]
    }

    fn tail(&self) -> &str {
        &self.text[self.tail..]
    }

    /// Whether some string matches both.
    pub fn intersects(&self, other: &Glob) -> bool {
        // A common string begins with both literal heads and ends with both literal tails:
        // most pairs of rule and request fail this without the search below.
        let (ah, at, bh, bt) = (self.head(), self.tail(), other.head(), other.tail());
        if !(ah.starts_with(bh) || bh.starts_with(ah)) || !(at.ends_with(bt) || bt.ends_with(at)) {
            return false;
        }
        if self.literal {
            return other.matches_symbols(&self.symbols);
        }
        if other.literal {
            return self.matches_symbols(&other.symbols);
        }
        if self.prefix {
            return other.can_begin_with(ah);
        }
        if other.prefix {
            return self.can_begin_with(bh);
        }
        search(&self.symbols, &other.symbols)
    }

    /// Whether every string `inner` matches, this one matches too (sound; see the module).
    ///
    /// `inner` is read as a string of symbols and this pattern matched against it: a literal
    /// takes the same literal, a `?` takes a literal or a `?` (one character either way), a
    /// `*` takes any run of symbols. Any way of matching shows the containment: whatever an
    /// `inner` symbol becomes, the symbol that took it matches that.
    pub fn contains(&self, inner: &Glob) -> bool {
        // Every string of `inner` begins with its literal head and ends with its literal
        // tail; for this pattern to take them all, those must begin with its head and end
        // with its tail.
        if !inner.head().starts_with(self.head()) || !inner.tail().ends_with(self.tail()) {
            return false;
        }
        // `L*` takes every string that begins with L, as every string of `inner` does.
        if self.prefix {
            return true;
        }
        let (p, r) = (&self.symbols, &inner.symbols);
        let m = r.len();
        // row[j]: whether p[..i] matches r[..j].
        let mut row = vec![false; m + 1];
        let mut next = vec![false; m + 1];
        row[0] = true;
        for &pc in p {
            if pc == '*' {
                // A `*` takes any run: next[j] if row[k] for some k <= j.
                let mut any = false;
                for j in 0..=m {
                    any |= row[j];
                    next[j] = any;
                }
            } else {
                next[0] = false;
                for j in 1..=m {
                    let rc = r[j - 1];
                    let fits = if pc == '?' { rc != '*' } else { rc == pc };
                    next[j] = row[j - 1] && fits;
                }
            }
            std::mem::swap(&mut row, &mut next);
            if !row.iter().any(|b| *b) {
                return false;
            }
        }
        row[m]
    }

    /// Feeds `c` to the positions in `live` (`None`: the start), leaving in `next` the
    /// positions that can have consumed it, with the `*`s that may match nothing skipped.
    fn step(&self, live: &[usize], c: Option<char>, next: &mut Vec<usize>) {
        let p = &self.symbols;
        next.clear();
        match c {
            None => next.extend_from_slice(live),
            Some(c) => next.extend(live.iter().filter_map(|&j| match p.get(j) {
                Some('*') => Some(j),
                Some('?') => Some(j + 1),
                Some(x) if *x == c => Some(j + 1),
                _ => None,
            })),
        }
        // A `*` may match nothing: the position after it is live too.
        let mut i = 0;
        while i < next.len() {
            let j = next[i];
            if p.get(j) == Some(&'*') && !next.contains(&(j + 1)) {
                next.push(j + 1);
            }
            i += 1;
        }
        next.sort_unstable();
        next.dedup();
    }

    /// Feeds `chars` from the start; the live positions after them (empty once none is).
    fn feed(&self, chars: impl Iterator<Item = char>) -> Vec<usize> {
        let (mut live, mut next) = (Vec::with_capacity(8), Vec::with_capacity(8));
        self.step(&[0], None, &mut live);
        for c in chars {
            self.step(&live, Some(c), &mut next);
            std::mem::swap(&mut live, &mut next);
            if live.is_empty() {
                break;
            }
        }
        live
    }

    /// Whether this pattern matches the string `s` (as symbols, all literal).
    fn matches_symbols(&self, s: &[char]) -> bool {
        self.feed(s.iter().copied()).contains(&self.symbols.len())
    }

    /// Whether some string this pattern matches begins with `head`: whether its matcher, fed
    /// `head`, is still alive (from any live position, the rest of a pattern matches
    /// something).
    fn can_begin_with(&self, head: &str) -> bool {
        !self.feed(head.chars()).is_empty()
    }
}

/// Whether some string matches both symbol strings: a search of the pairs of positions.
fn search(a: &[char], b: &[char]) -> bool {
    let (n, m) = (a.len(), b.len());
    let width = m + 1;
    let mut seen = vec![0u64; ((n + 1) * width).div_ceil(64)];
    let mut todo = vec![(0usize, 0usize)];
    while let Some((i, j)) = todo.pop() {
        let at = i * width + j;
        if seen[at / 64] & (1 << (at % 64)) != 0 {
            continue;
        }
        seen[at / 64] |= 1 << (at % 64);
        if i == n && j == m {
            return true;
        }
        // A `*` may match nothing.
        if i < n && a[i] == '*' {
            todo.push((i + 1, j));
        }
        if j < m && b[j] == '*' {
            todo.push((i, j + 1));
        }
        // Or both take one character: some character fits both unless they are two different
        // literals. A `*` that takes one stays where it is.
        if i < n && j < m {
            let (x, y) = (a[i], b[j]);
            if wild(x) || wild(y) || x == y {
                let ni = if x == '*' { i } else { i + 1 };
                let nj = if y == '*' { j } else { j + 1 };
                if (ni, nj) != (i, j) {
                    todo.push((ni, nj));
                }
            }
        }
    }
    false
}

/// Whether some string matches both `a` and `b` (exact).
pub fn intersects(a: &str, b: &str) -> bool {
    Glob::new(a).intersects(&Glob::new(b))
}

/// Whether every string that matches `inner` also matches `outer` (sound; see the module).
pub fn contains(outer: &str, inner: &str) -> bool {
    Glob::new(outer).contains(&Glob::new(inner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wildmatch::WildMatch;

    #[test]
    fn examples() {
        assert!(intersects("secret:/db/?", "secret:/db/*"));
        assert!(!contains("secret:/db/?", "secret:/db/*"));
        assert!(contains("secret:/db/*", "secret:/db/?"));
        assert!(intersects("config:/prod/*", "config:/*"));
        assert!(intersects("config:/prod/*", "config:/pro?/x"));
        assert!(!intersects("config:/prod/*", "config:/dev/*"));
        assert!(intersects("delete", "d*"));
        assert!(intersects("delete", "*"));
        assert!(!intersects("delete", "r*"));
        assert!(contains("*", "anything*?"));
        assert!(contains("a?*", "a*?"));
        assert!(contains("secret:/*", "secret:/a/*/b"));
        assert!(!contains("secret:/a/*", "secret:/*"));
        assert!(contains("read", "read"));
        assert!(!contains("read", "rea?"));
        assert!(intersects("", "*") && !intersects("", "?") && contains("*", ""));
        assert!(contains("*b", "ab") && contains("a*", "ab") && !contains("*c", "ab"));
        assert!(intersects("x*", "*y") && !intersects("x*", "y*") && !intersects("*x", "*y"));
    }

    const ALPHABET: &[char] = &['a', 'b', '*', '?'];

    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(ALPHABET), 0..7)
            .prop_map(|v| v.into_iter().collect())
    }

    /// Every string over {a, b} up to `len` (a `?` or `*` can always take an `a`, so these
    /// witness every intersection of patterns over {a, b, *, ?}).
    fn strings(len: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..len {
            let mut next = Vec::new();
            for s in &frontier {
                for c in ['a', 'b'] {
                    next.push(format!("{s}{c}"));
                }
            }
            out.extend(next.iter().cloned());
            frontier = next;
        }
        out
    }

    proptest! {
        /// `intersects` is exact and `contains` sound, checked against every short string.
        #[test]
        fn agree_with_matching(a in pattern(), b in pattern()) {
            let (ma, mb) = (WildMatch::new(&a), WildMatch::new(&b));
            let words = strings(12);
            let both = words.iter().any(|w| ma.matches(w) && mb.matches(w));
            // A shortest common string never has both patterns' `*` take the same character, so
            // each character moves one pattern on: 12 characters witness any intersection of
            // two patterns of at most 6 symbols.
            prop_assert_eq!(intersects(&a, &b), both, "{} ∩ {}", a, b);
            if contains(&a, &b) {
                for w in &words {
                    prop_assert!(!mb.matches(w) || ma.matches(w), "{} ⊇ {} but {} is only in the second", a, b, w);
                }
            }
        }
    }
}
