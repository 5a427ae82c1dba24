//! One record as one line, written to any [`embedded_io::Write`]: a serial port through
//! [`IoWrite`](super::IoWrite), a fixed buffer on a microcontroller, a `Vec` for the queue.

use crate::interpret::Interpretation;
use crate::sink::{CameraStatusRecord, ErrorRecord, Record, ResultRecord};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt::Write as _;

/// How a record is written on the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// The JSON object stdout prints (docs/output.md).
    #[default]
    Json,
    /// `R,...` or `E,...`: see the module documentation of [`serial`](super).
    Csv,
}

/// Why a line could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LineError<E: core::fmt::Debug> {
    /// The record cannot be serialised; nothing was written.
    #[error("cannot serialise a record")]
    Serialize(#[from] serde_json::Error),
    /// The writer failed; part of the line may have been written.
    #[error("cannot write a line: {0:?}")]
    Write(E),
}

/// Writes `record` as one `\n`-terminated line.
///
/// The line is rendered in memory first, so that a serialisation error leaves nothing on the
/// line, and handed to `out` with one `write_all`.
pub fn write_line<W: embedded_io::Write>(
    out: &mut W,
    record: &Record,
    format: LineFormat,
) -> Result<(), LineError<W::Error>> {
    let line = render(record, format)?;
    out.write_all(&line).map_err(LineError::Write)
}

/// `record` as one line, `\n` included.
pub fn render(record: &Record, format: LineFormat) -> Result<Vec<u8>, serde_json::Error> {
    Ok(match format {
        LineFormat::Json => {
            let mut line = serde_json::to_vec(record)?;
            line.push(b'\n');
            line
        }
        LineFormat::Csv => csv(record).into_bytes(),
    })
}

/// A camera status change as one line: the JSON object, or `S,<camera>,<status>,<ts>,<detail>`.
pub fn render_status(
    status: &CameraStatusRecord,
    format: LineFormat,
) -> Result<Vec<u8>, serde_json::Error> {
    Ok(match format {
        LineFormat::Json => {
            let mut line = serde_json::to_vec(status)?;
            line.push(b'\n');
            line
        }
        LineFormat::Csv => {
            let state = serde_json::to_value(status.status)?;
            format!(
                "S,{},{},{},{}\n",
                field(&status.camera),
                state.as_str().unwrap_or_default(),
                field(&status.ts),
                field(&status.detail)
            )
            .into_bytes()
        }
    })
}

fn csv(record: &Record) -> String {
    let mut line = String::with_capacity(96);
    // Writing to a String cannot fail: the fmt::Results below are always Ok.
    match record {
        Record::Result(ResultRecord { frame, result, .. }) => {
            let _ = write!(
                line,
                "R,{},{},{},",
                frame.seq,
                field(&frame.camera),
                field(&frame.ts)
            );
            match result {
                Interpretation::Scene(scene) => {
                    // One line per object, or one empty line for a frame without any.
                    let head = std::mem::take(&mut line);
                    return scene_lines(&head, scene);
                }
                Interpretation::Classification(c) => match c.top.first() {
                    Some(best) => {
                        let _ = write!(
                            line,
                            "{},{},{:.4}",
                            best.index,
                            field(&best.label),
                            best.score
                        );
                    }
                    None => line.push_str(",,"),
                },
                // The identity's number where the class index goes, its name (or id) as label.
                Interpretation::Identification(i) => {
                    let number = i.identity.trim_start_matches("id-").trim_start_matches('0');
                    let _ = write!(
                        line,
                        "{},{},{:.4}",
                        if number.is_empty() { "0" } else { number },
                        field(i.name.as_deref().unwrap_or(&i.identity)),
                        i.similarity
                    );
                }
            }
        }
        Record::Error(ErrorRecord { frame, error, .. }) => {
            let _ = write!(
                line,
                "E,{},{},{},{},{}",
                frame.seq,
                field(&frame.camera),
                field(&frame.ts),
                field(error.stage),
                field(&error.message)
            );
        }
    }
    line.push('\n');
    line
}

/// A scene's frame: `O,seq,camera,ts,track,label,score,x0,y0,x1,y1,identity or fine label,
/// similarity or its score` per object (`head` is `R,seq,camera,ts,`), or `R,seq,camera,ts,,,`
/// for a frame without objects.
fn scene_lines(head: &str, scene: &crate::interpret::Scene) -> String {
    if scene.objects.is_empty() {
        return format!("{head},,\n");
    }
    let object_head = head.replacen('R', "O", 1);
    let mut lines = String::new();
    for o in &scene.objects {
        let b = o.object.bounds;
        let (what, how) = match (&o.identity, &o.fine_label) {
            (Some(identity), _) => (
                o.name.as_deref().unwrap_or(identity).to_string(),
                o.similarity.map(|s| format!("{s:.4}")).unwrap_or_default(),
            ),
            (None, Some(label)) => (
                label.clone(),
                o.top
                    .first()
                    .map(|c| format!("{:.4}", c.score))
                    .unwrap_or_default(),
            ),
            (None, None) => (String::new(), String::new()),
        };
        let _ = writeln!(
            lines,
            "{object_head}{},{},{:.4},{},{},{},{},{},{}",
            o.track.map(|t| t.to_string()).unwrap_or_default(),
            field(&o.object.label),
            o.object.score,
            b.x0,
            b.y0,
            b.x1,
            b.y1,
            field(&what),
            how
        );
    }
    lines
}

/// A text field made safe for a reader that splits on `,` and `\n`: each `,` becomes `;` and
/// each control character (`\n`, `\r`, tab, ...) a space. Other characters, UTF-8 included,
/// are kept.
pub fn field(text: &str) -> Cow<'_, str> {
    if text.chars().any(|c| c == ',' || c.is_control()) {
        Cow::Owned(
            text.chars()
                .map(|c| match c {
                    ',' => ';',
                    c if c.is_control() => ' ',
                    c => c,
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}
