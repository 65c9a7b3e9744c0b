//! Parsing of human-friendly sizes ("256MiB", "1GB") for flags; durations are
//! [`lumen_storage::duration`]'s.

/// Parses a byte size: a number with an optional `KiB`/`MiB`/`GiB` (powers of 1024) or `KB`/`MB`/`GB`
/// (powers of 1000) suffix.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write e.g. 16MiB, 1GiB, 500000"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}; use KiB, MiB or GiB"
            ));
        }
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes < 1.0 || bytes > usize::MAX as f64 {
        return Err(format!("{text:?} is not a valid size"));
    }
    Ok(bytes as usize)
}

/// Writes a byte size the way [`parse_bytes`] reads it, in the largest binary unit that divides it
/// (`1GiB`, `256MiB`, `1000`), for flag defaults taken from the crates' `Default`s.
pub fn format_bytes(bytes: usize) -> String {
    for (unit, factor) in [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests;
