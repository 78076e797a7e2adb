//! Disk sizes with PVE's `K`/`M`/`G`/`T` suffixes.
//!
//! Why: sizes appear in disk property strings (`size=32G`) and in resize requests, and
//! comparing them as text is how clients end up "resizing" 32G to 32768M or trying to
//! shrink. A byte count with PVE's parse and print rules makes grow-only resizes exact.

use std::fmt;
use std::str::FromStr;

/// A size in bytes, parsed from and printed as PVE writes it (`32G`, `512M`, `1.5G`, `1024`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DiskSize(u64);

/// Why a text is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a size like 32G, 512M or 1024 (bytes)")]
pub struct SizeParseError {
    text: String,
}

const UNITS: [(char, u64); 4] = [
    ('T', 1 << 40),
    ('G', 1 << 30),
    ('M', 1 << 20),
    ('K', 1 << 10),
];

impl DiskSize {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// A size of `gibibytes` GiB.
    pub const fn from_gib(gibibytes: u64) -> Self {
        Self(gibibytes << 30)
    }

    /// A size of `mebibytes` MiB.
    pub const fn from_mib(mebibytes: u64) -> Self {
        Self(mebibytes << 20)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for DiskSize {
    type Err = SizeParseError;

    /// Accepts `\d+(\.\d+)?[KMGT]?` (case-insensitive unit, optional trailing `B`/`iB` is not
    /// accepted because PVE does not accept it); no unit means bytes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || SizeParseError {
            text: text.to_owned(),
        };
        let trimmed = text.trim();
        let (number, multiplier) = match trimmed.chars().last() {
            Some(last) if last.is_ascii_alphabetic() => {
                let unit = last.to_ascii_uppercase();
                let (_, multiplier) = UNITS
                    .iter()
                    .find(|(symbol, _)| *symbol == unit)
                    .ok_or_else(invalid)?;
                (&trimmed[..trimmed.len() - 1], *multiplier)
            }
            _ => (trimmed, 1),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits_only = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
            return Err(invalid());
        }
        if number.contains('.') && fraction.is_empty() {
            return Err(invalid());
        }
        let whole: u64 = whole.parse().map_err(|_| invalid())?;
        let mut bytes = whole.checked_mul(multiplier).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            // Exact decimal arithmetic: fraction / 10^len * multiplier, rounded down like PVE.
            let digits = fraction.get(..12).unwrap_or(fraction);
            let scale = 10u128.pow(u32::try_from(digits.len()).map_err(|_| invalid())?);
            let numerator: u128 = digits.parse().map_err(|_| invalid())?;
            let extra = numerator * u128::from(multiplier) / scale;
            bytes = bytes
                .checked_add(u64::try_from(extra).map_err(|_| invalid())?)
                .ok_or_else(invalid)?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for DiskSize {
    /// The largest unit that divides the size exactly, else bytes, like PVE's `format_size`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (symbol, multiplier) in UNITS {
            if self.0 != 0 && self.0.is_multiple_of(multiplier) {
                return write!(formatter, "{}{symbol}", self.0 / multiplier);
            }
        }
        write!(formatter, "{}", self.0)
    }
}

impl serde::Serialize for DiskSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DiskSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        match &value {
            serde_json::Value::Number(_) => crate::lenient::value_as_u64(&value)
                .map(Self)
                .ok_or_else(|| serde::de::Error::custom("size out of range")),
            serde_json::Value::String(text) => text.parse().map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom("expected a size")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DiskSize;
    use proptest::prelude::*;

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!("32G".parse::<DiskSize>().unwrap(), DiskSize::from_gib(32));
        assert_eq!("512M".parse::<DiskSize>().unwrap(), DiskSize::from_mib(512));
        assert_eq!("1T".parse::<DiskSize>().unwrap().bytes(), 1 << 40);
        assert_eq!("4K".parse::<DiskSize>().unwrap().bytes(), 4096);
        assert_eq!("1024".parse::<DiskSize>().unwrap().bytes(), 1024);
        assert_eq!(
            "1.5G".parse::<DiskSize>().unwrap(),
            DiskSize::from_mib(1536)
        );
        assert_eq!("2252M".parse::<DiskSize>().unwrap().to_string(), "2252M");
        assert_eq!("32768M".parse::<DiskSize>().unwrap().to_string(), "32G");
        for bad in ["", "G", "12X", "1.G", "-1G", "1,5G", "32GB"] {
            assert!(bad.parse::<DiskSize>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn printing_then_parsing_is_identity(bytes in any::<u64>()) {
            let size = DiskSize::from_bytes(bytes);
            prop_assert_eq!(size.to_string().parse::<DiskSize>().unwrap(), size);
        }

        #[test]
        fn unit_sizes_print_with_their_unit(count in 1u64..100_000, unit in 0usize..4) {
            let (symbol, multiplier) = super::UNITS[unit];
            let size = DiskSize::from_bytes(count * multiplier);
            let text = format!("{count}{symbol}");
            prop_assert_eq!(text.parse::<DiskSize>().unwrap(), size);
            prop_assert!(size.to_string().ends_with(['T', 'G', 'M', 'K']));
        }
    }
}
