//! The order of package versions: dpkg's (epoch, upstream version, revision, `~` before
//! anything) through the `debversion` crate, and rpm's (`rpmvercmp`) for rpm-based images.

use std::cmp::Ordering;

/// Compares two versions of a package the way `package_manager` (`dpkg` or `rpm`) does.
/// A version neither can read is compared as text.
pub fn compare(package_manager: &str, a: &str, b: &str) -> Ordering {
    match package_manager {
        "rpm" => rpm(a, b),
        _ => dpkg(a, b),
    }
}

/// dpkg's order (`dpkg --compare-versions`).
pub fn dpkg(a: &str, b: &str) -> Ordering {
    match (
        a.parse::<debversion::Version>(),
        b.parse::<debversion::Version>(),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// The order of kernel release strings (`6.1.0-28-amd64`, `5.14.0-427.el9.x86_64`): their
/// number runs compared as numbers, as rpm compares versions.
pub fn compare_kernels(a: &str, b: &str) -> Ordering {
    segments(a, b)
}

/// rpm's order: epoch, then version, then release, each compared with `rpmvercmp`.
pub fn rpm(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((version, release)) => (epoch, version.to_string(), release.to_string()),
            None => (epoch, rest.to_string(), String::new()),
        }
    };
    let (ea, va, ra) = split(a);
    let (eb, vb, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| segments(&va, &vb))
        .then_with(|| segments(&ra, &rb))
}

/// `rpmvercmp`: runs of digits compare as numbers and sort after runs of letters, other
/// characters separate runs, `~` sorts before everything (even the end), `^` after the end.
fn segments(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while a.first().is_some_and(|c| separator(*c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|c| separator(*c)) {
            b = &b[1..];
        }
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let numeric = x.is_ascii_digit();
                if numeric != y.is_ascii_digit() {
                    // A number is newer than letters.
                    return if numeric {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    };
                }
                let take = |s: &[u8]| {
                    s.iter()
                        .take_while(|c| {
                            if numeric {
                                c.is_ascii_digit()
                            } else {
                                c.is_ascii_alphabetic()
                            }
                        })
                        .count()
                };
                let (na, nb) = (take(a), take(b));
                let (sa, sb) = (&a[..na], &b[..nb]);
                let order = if numeric {
                    let trim =
                        |s: &'_ [u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
                    let (ta, tb) = (&sa[trim(sa)..], &sb[trim(sb)..]);
                    ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
                } else {
                    sa.cmp(sb)
                };
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[na..];
                b = &b[nb..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn dpkg_orders_epochs_tildes_and_revisions() {
        for (a, b, want) in [
            ("1.22.1-9", "1.22.1-9+deb12u1", Less),
            ("1:1.0-1", "2.0-1", Greater),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1.0-1", "1.0-1", Equal),
            ("2.36-9+deb12u9", "2.36-9+deb12u10", Less),
            ("1.10", "1.9", Greater),
            ("1.0-1~bpo12+1", "1.0-1", Less),
            ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", Less),
        ] {
            assert_eq!(dpkg(a, b), want, "{a} vs {b}");
            assert_eq!(dpkg(b, a), want.reverse(), "{b} vs {a}");
        }
        // Unreadable versions are compared as text rather than refused.
        assert_eq!(dpkg("", "1.0"), Less);
    }

    #[test]
    fn rpm_orders_like_rpmvercmp() {
        for (a, b, want) in [
            ("1.0-1.el9", "1.0-2.el9", Less),
            ("1:1.0-1", "2.0-1", Greater),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1.0^git1-1", "1.0-1", Greater),
            ("1.10-1", "1.9-1", Greater),
            ("1.0a-1", "1.0.1-1", Less),
            ("2.0.01-1", "2.0.1-1", Equal),
            ("5.14.0-427.el9", "5.14.0-503.el9", Less),
        ] {
            assert_eq!(rpm(a, b), want, "{a} vs {b}");
            assert_eq!(rpm(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn kernels_order_by_their_numbers() {
        let mut k = vec![
            "6.1.0-28-amd64",
            "6.1.0-9-amd64",
            "6.10.0-1-amd64",
            "6.1.0-27-amd64",
        ];
        k.sort_by(|a, b| compare_kernels(a, b));
        assert_eq!(
            k,
            [
                "6.1.0-9-amd64",
                "6.1.0-27-amd64",
                "6.1.0-28-amd64",
                "6.10.0-1-amd64"
            ]
        );
        assert_eq!(compare("rpm", "1.0-1", "1.0-2"), Less);
        assert_eq!(compare("dpkg", "1.0~a", "1.0"), Less);
    }
}
