//! Tables as `flux get` prints them (its tablewriter settings: headers upper-cased, every cell padded to
//! its column's width, columns separated by a tab, each row ending with one), Flux's shortening of
//! hexadecimal digests, and kubectl's AGE.

use std::time::Duration;

/// The table of `header` (empty: none) and `rows`. A cell of several lines spans as many table lines,
/// the other cells of its row blank below their first, as tablewriter prints it.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0; columns];
    let header: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = cell.lines().map(|l| l.chars().count()).fold(*w, usize::max);
        }
    }
    let pad = |cell: &str, width: usize| format!("{cell}{}", " ".repeat(width - cell.chars().count()));
    let mut out = String::new();
    if !header.is_empty() {
        let cells: Vec<String> = header.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        out += &cells.join("\t");
        out.push('\n');
    }
    for row in rows {
        let lines: Vec<Vec<&str>> = row.iter().map(|c| c.split('\n').collect()).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            for (cell, w) in lines.iter().zip(&widths) {
                out += &pad(cell.get(i).copied().unwrap_or_default(), *w);
                out.push('\t');
            }
            out.push('\n');
        }
    }
    out
}

/// Every hexadecimal word of 40 to 128 characters (a SHA-1 to SHA-512 digest) in `s` cut to its first 8,
/// as `flux get` shows revisions and messages.
pub fn truncate_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let hex = word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if hex && (40..=128).contains(&word.len()) {
            out.push_str(&word[..8]);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// kubectl's AGE of something `d` old (`45s`, `3m12s`, `5h`, `12d`).
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h, days) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s.is_multiple_of(60) => format!("{m}m"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m.is_multiple_of(60) => format!("{h}h"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h.is_multiple_of(24) => format!("{days}d"),
        _ if h < 192 => format!("{days}d{}h", h % 24),
        _ if days < 730 => format!("{days}d"),
        _ if days < 2920 && days.is_multiple_of(365) => format!("{}y", days / 365),
        _ if days < 2920 => format!("{}y{}d", days / 365, days % 365),
        _ => format!("{}y", days / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_padded_and_tab_separated_as_flux_prints_them() {
        let rows = vec![
            vec!["podinfo".into(), "main@sha1:696f056d".into(), "True".into()],
            vec!["podinfo-shard1".into(), "".into(), "False".into()],
        ];
        assert_eq!(
            render(&["Name", "Revision", "Ready"], &rows),
            "NAME          \tREVISION          \tREADY\n\
             podinfo       \tmain@sha1:696f056d\tTrue \t\n\
             podinfo-shard1\t                  \tFalse\t\n"
        );
        assert_eq!(render(&[], &rows[..1]), "podinfo\tmain@sha1:696f056d\tTrue\t\n");
        let multi = vec![vec![
            "5m".into(),
            "Namespace/demo created\nConfigMap/demo/a created".into(),
        ]];
        assert_eq!(
            render(&["Last seen", "Message"], &multi),
            "LAST SEEN\tMESSAGE                 \n\
             5m       \tNamespace/demo created  \t\n\
             \x20        \tConfigMap/demo/a created\t\n"
        );
    }

    #[test]
    fn digests_are_cut_to_eight_characters() {
        let sha1 = "696f056df216eea4f9401adbee0ff744d4df390f";
        assert_eq!(
            truncate_hex(&format!("Applied revision: main@sha1:{sha1}")),
            "Applied revision: main@sha1:696f056d"
        );
        let sha256 = "a".repeat(64);
        assert_eq!(
            truncate_hex(&format!("latest@sha256:{sha256}")),
            "latest@sha256:aaaaaaaa"
        );
        // shorter, upper-case or part of a longer word: kept
        assert_eq!(truncate_hex("v1.2.3 abc123"), "v1.2.3 abc123");
        assert_eq!(truncate_hex(&format!("x{sha1}")), format!("x{sha1}"));
        assert_eq!(truncate_hex(&sha1.to_uppercase()), sha1.to_uppercase());
        assert_eq!(truncate_hex(""), "");
    }

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (600, "10m"),
            (10799, "179m"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (30 * 86400, "30d"),
            (800 * 86400, "2y70d"),
            (3000 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(age(Duration::from_secs(secs)), want, "{secs}s");
        }
    }
}
