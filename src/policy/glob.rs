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
/// at most one `*` (`*?*` and `?*` match the same strings), so that [`contains`] sees more.
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

/// The literal text before the first and after the last pattern character.
/// For a pattern without one, both are the whole text.
fn literal_ends(p: &str) -> (&str, &str) {
    match (p.find(wild), p.rfind(wild)) {
        (Some(head), Some(tail)) => (&p[..head], &p[tail + 1..]),
        _ => (p, p),
    }
}

/// Whether some string matches both `a` and `b`.
pub fn intersects(a: &str, b: &str) -> bool {
    // A common string begins with both literal heads and ends with both literal tails: most
    // pairs of rule and request fail this without the search below.
    let ((ah, at), (bh, bt)) = (literal_ends(a), literal_ends(b));
    if !(ah.starts_with(bh) || bh.starts_with(ah)) || !(at.ends_with(bt) || bt.ends_with(at)) {
        return false;
    }
    let (a, b) = (symbols(a), symbols(b));
    let (n, m) = (a.len(), b.len());
    let width = m + 1;
    let mut seen = vec![false; (n + 1) * width];
    let mut todo = vec![(0usize, 0usize)];
    while let Some((i, j)) = todo.pop() {
        let at = i * width + j;
        if seen[at] {
            continue;
        }
        seen[at] = true;
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

/// Whether every string that matches `inner` also matches `outer` (sound; see the module).
///
/// `inner` is read as a string of symbols and `outer` matched against it: a literal of `outer`
/// takes the same literal, a `?` takes a literal or a `?` (one character either way), a `*`
/// takes any run of symbols. Any way of matching shows the containment: whatever an `inner`
/// symbol becomes, the `outer` symbol that took it matches that.
pub fn contains(outer: &str, inner: &str) -> bool {
    // Every string of `inner` begins with its literal head and ends with its literal tail; for
    // `outer` to take them all, those must begin with `outer`'s head and end with its tail.
    let ((oh, ot), (ih, it)) = (literal_ends(outer), literal_ends(inner));
    if !ih.starts_with(oh) || !it.ends_with(ot) {
        return false;
    }
    let (p, r) = (symbols(outer), symbols(inner));
    let m = r.len();
    // row[j]: whether p[..i] matches r[..j].
    let mut row = vec![false; m + 1];
    row[0] = true;
    for &pc in &p {
        let mut next = vec![false; m + 1];
        if pc == '*' {
            // A `*` takes any run: next[j] if row[k] for some k <= j.
            let mut any = false;
            for j in 0..=m {
                any |= row[j];
                next[j] = any;
            }
        } else {
            for j in 1..=m {
                let rc = r[j - 1];
                let fits = if pc == '?' { rc != '*' } else { rc == pc };
                next[j] = row[j - 1] && fits;
            }
        }
        row = next;
        if !row.iter().any(|b| *b) {
            return false;
        }
    }
    row[m]
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
