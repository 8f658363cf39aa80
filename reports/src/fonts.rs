//! The font charts are drawn with.
//!
//! plotters lays out and rasterizes text with `ab_glyph` (pure Rust) from a
//! TrueType file registered at run time; no system font library is used.
//! The file is `$GREGOR_FONT` when set (if it cannot be read, charts have
//! no text), else DejaVu Sans or Liberation Sans where Debian (`fonts-dejavu-core`, `fonts-liberation`), Fedora and
//! Arch put them. Without one, charts are drawn without text (shapes,
//! shading and data only) and [`missing_font_message`] says what to install.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

/// Regular and bold faces, tried in order.
const CANDIDATES: &[(&str, &str)] = &[
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    ),
];

static LOADED: OnceLock<Option<PathBuf>> = OnceLock::new();

fn load(path: &Path, style: FontStyle) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", style, bytes).is_ok()
}

/// The font file in use, loading it on first call; `None` if none was found.
pub fn font_path() -> Option<&'static Path> {
    LOADED
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("GREGOR_FONT").map(PathBuf::from) {
                // The font asked for, or none: never a different one.
                return load(&p, FontStyle::Normal).then_some(p);
            }
            for (regular, bold) in CANDIDATES {
                if load(Path::new(regular), FontStyle::Normal) {
                    load(Path::new(bold), FontStyle::Bold);
                    return Some(PathBuf::from(regular));
                }
            }
            None
        })
        .as_deref()
}

/// Whether charts can draw text.
pub fn available() -> bool {
    font_path().is_some()
}

/// What to do when no font was found.
pub fn missing_font_message() -> String {
    format!(
        "no font file found ({}): charts are drawn without text; \
         install fonts-dejavu-core (apt) or set GREGOR_FONT to a .ttf file",
        match std::env::var_os("GREGOR_FONT") {
            Some(p) => format!(
                "GREGOR_FONT={} cannot be read as a font",
                p.to_string_lossy()
            ),
            None => format!(
                "tried {}",
                CANDIDATES
                    .iter()
                    .map(|c| c.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    )
}
