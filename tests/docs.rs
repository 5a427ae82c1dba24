//! The README and the book (`docs/`) against what they describe: every relative link and anchor
//! resolves (offline: web links are not followed), every chapter is in the book's SUMMARY.md,
//! and every configuration the book shows parses, so that a key it documents exists.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The Markdown files: the README and everything under docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![common::repo().join("README.md")];
    let mut folders = vec![common::repo().join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text outside fenced code blocks and inline code, line by line (links in code are code).
fn prose(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        // Inline code spans removed; a stray backtick keeps the rest of the line.
        let mut out = String::new();
        let mut parts = line.split('`');
        let mut in_code = false;
        for part in parts.by_ref() {
            if !in_code {
                out.push_str(part);
            }
            in_code = !in_code;
        }
        lines.push(out);
    }
    lines
}

/// The targets of `[text](target)` and `![alt](target)` links.
fn links(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        found.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    found
}

/// The anchors of a file's headings, as GitHub and mdBook make them: lower case, letters,
/// digits, `-` and `_` kept, spaces to `-`, the rest dropped; repeats get `-1`, `-2`.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        }
        if fence || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .chars()
            .filter_map(|c| match c {
                c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
                '-' | '_' => Some(c),
                ' ' => Some('-'),
                _ => None,
            })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        out.push(if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in prose(&text) {
            for target in links(&line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !resolved.exists() {
                    broken.push(format!("{}: {target}: no such file", file.display()));
                    continue;
                }
                if let Some(anchor) = anchor {
                    let text = std::fs::read_to_string(&resolved).unwrap_or_default();
                    if !anchors(&text).iter().any(|a| a == anchor) {
                        broken.push(format!("{}: {target}: no such heading", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: the parser is broken"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary() {
    let docs = common::repo().join("docs");
    let summary = std::fs::read_to_string(docs.join("SUMMARY.md")).unwrap();
    let listed: Vec<PathBuf> = prose(&summary)
        .iter()
        .flat_map(|line| links(line))
        .map(|target| docs.join(target))
        .collect();
    for file in documents() {
        let is_chapter = file.starts_with(&docs) && file.file_name().unwrap() != "SUMMARY.md";
        if is_chapter {
            assert!(
                listed.contains(&file),
                "{} is not in docs/SUMMARY.md",
                file.display()
            );
        }
    }
}

/// The TOML blocks of the book that are run configurations (a `[source]`, `[sink]`, ... table,
/// not a model manifest), each with the file it is in.
fn configuration_blocks() -> Vec<(PathBuf, String)> {
    let sections = [
        "[source",
        "[[source",
        "[sink",
        "[backend",
        "[pipeline",
        "[classify",
        "[attention",
        "[zoom",
        "[parts",
        "[token_labels",
        "[reid",
        "[[reid",
        "[gallery",
        "[metrics",
        "[web",
        "[gpio",
    ];
    let mut blocks = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut block: Option<String> = None;
        for line in text.lines() {
            match (&mut block, line.trim_start()) {
                (None, "```toml") => block = Some(String::new()),
                (Some(body), "```") => {
                    let is_run_config = body
                        .lines()
                        .any(|l| sections.iter().any(|s| l.trim_start().starts_with(s)));
                    if is_run_config && !body.contains("\nname = ") && !body.starts_with("name = ")
                    {
                        blocks.push((file.clone(), body.clone()));
                    }
                    block = None;
                }
                (Some(body), _) => {
                    body.push_str(line);
                    body.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    blocks
}

/// Every configuration the book shows parses: a key it documents that the code does not know
/// (`deny_unknown_fields`) fails here. Blocks that show one section get the two that every
/// configuration needs.
#[test]
fn every_configuration_in_the_book_parses() {
    let blocks = configuration_blocks();
    assert!(
        blocks.len() >= 10,
        "only {} configuration blocks found",
        blocks.len()
    );
    eprintln!("docs: {} configuration blocks", blocks.len());
    // What this test rests on: a key the code does not know is refused.
    let unknown = "[source]\nkind = \"pattern\"\n[model]\npath = \"m\"\n[sink]\nkind = \"mqtt\"\nhots = \"h\"\n";
    assert!(edgevit::pipeline::RunConfig::parse(unknown, Path::new(".")).is_err());
    let mut failures = Vec::new();
    for (file, body) in &blocks {
        let mut table: toml::Table = match toml::from_str(body) {
            Ok(table) => table,
            Err(e) => {
                failures.push(format!("{}:\n{body}\n=> not TOML: {e}\n", file.display()));
                continue;
            }
        };
        let source = table
            .entry("source")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(source) = source.as_table_mut() {
            // `[[source.camera]]` alone belongs to a v4l2 source; a block without a source
            // gets a test pattern.
            let kind = if source.contains_key("camera") && source.len() == 1 {
                "v4l2"
            } else {
                "pattern"
            };
            source.entry("kind").or_insert_with(|| kind.into());
        }
        table
            .entry("model")
            .or_insert_with(|| toml::Value::Table(toml::toml! { path = "m" }));
        let text = toml::to_string(&table).unwrap();
        if let Err(e) = edgevit::pipeline::RunConfig::parse(&text, Path::new("/etc/edgevit")) {
            failures.push(format!("{}:\n{body}\n=> {e}\n", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The keys the code knows in each section, as serde lists them when it refuses an unknown
/// one ("unknown field `zz`, expected one of `a`, `b`").
fn known_keys(section: &str, template: &str) -> Vec<String> {
    let text = template.replace("ZZ", "zz_no_such_key = 1");
    let error = match edgevit::pipeline::RunConfig::parse(&text, Path::new("/etc/edgevit")) {
        Ok(_) => panic!("{section}: an unknown key was accepted:\n{text}"),
        Err(e) => e,
    };
    let list = error
        .split("expected one of ")
        .nth(1)
        .or_else(|| error.split("expected ").nth(1))
        .unwrap_or_else(|| panic!("{section}: no key list in: {error}"));
    list.lines()
        .next()
        .unwrap_or_default()
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every key of every section the code reads is documented in the book (named in backticks
/// or on the left of `=` in a TOML block), so that the reference cannot fall behind the code.
#[test]
fn every_configuration_key_is_documented() {
    const BASE: &str = "[source]\nkind = \"pattern\"\n[model]\npath = \"m\"\n";
    let sections = [
        ("(top level)", format!("ZZ\n{BASE}")),
        ("source (image-file)", "[source]\nkind = \"image-file\"\npath = \"x.png\"\nZZ\n[model]\npath = \"m\"\n".to_string()),
        ("source (image-dir)", "[source]\nkind = \"image-dir\"\npath = \"d\"\nZZ\n[model]\npath = \"m\"\n".to_string()),
        ("source (pattern)", "[source]\nkind = \"pattern\"\nZZ\n[model]\npath = \"m\"\n".to_string()),
        ("source (v4l2)", "[source]\nkind = \"v4l2\"\nZZ\n[[source.camera]]\nid = \"a\"\ndevice = \"/dev/video0\"\n[model]\npath = \"m\"\n".to_string()),
        ("source.camera", "[source]\nkind = \"v4l2\"\n[[source.camera]]\nid = \"a\"\ndevice = \"/dev/video0\"\nZZ\n[model]\npath = \"m\"\n".to_string()),
        ("model", "[source]\nkind = \"pattern\"\n[model]\npath = \"m\"\nZZ\n".to_string()),
        ("backend (tract)", format!("{BASE}[backend]\nkind = \"tract\"\nZZ\n")),
        ("pipeline", format!("{BASE}[pipeline]\nZZ\n")),
        ("classify", format!("{BASE}[classify]\nZZ\n")),
        ("attention", format!("{BASE}[attention]\nZZ\n")),
        ("zoom", format!("{BASE}[zoom]\nZZ\n")),
        ("parts", format!("{BASE}[parts]\nZZ\n")),
        ("token_labels", format!("{BASE}[token_labels]\nZZ\n")),
        ("reid", format!("{BASE}[reid]\nZZ\n")),
        ("reid.roi", format!("{BASE}[[reid.roi]]\ncamera = \"c\"\nname = \"n\"\nbox = [0, 0, 1, 1]\nZZ\n")),
        ("gallery", format!("{BASE}[gallery]\nZZ\n")),
        ("detector", format!("{BASE}[detector]\npath = \"d\"\nZZ\n")),
        ("detect", format!("{BASE}[detect]\nZZ\n")),
        ("tracker", format!("{BASE}[tracker]\nZZ\n")),
        ("zones", format!("{BASE}[[zones]]\nname = \"z\"\ncamera = \"c\"\npoints = []\nZZ\n")),
        ("metrics", format!("{BASE}[metrics]\nZZ\n")),
        ("web", format!("{BASE}[web]\nZZ\n")),
        ("gpio", format!("{BASE}[gpio]\nchip = \"/dev/gpiochip0\"\nZZ\n")),
        ("sink (file)", format!("{BASE}[sink]\nkind = \"file\"\npath = \"o\"\nZZ\n")),
        ("sink (serial)", format!("{BASE}[sink]\nkind = \"serial\"\npath = \"/dev/ttyS0\"\nZZ\n")),
        ("sink (mqtt)", format!("{BASE}[sink]\nkind = \"mqtt\"\nZZ\n")),
        ("sink.spool", format!("{BASE}[sink]\nkind = \"mqtt\"\n[sink.spool]\nZZ\n")),
        ("sink.events", format!("{BASE}[sink]\nkind = \"mqtt\"\n[sink.events]\nZZ\n")),
        ("sink.discovery", format!("{BASE}[sink]\nkind = \"mqtt\"\n[sink.discovery]\nZZ\n")),
        ("sink.tls", format!("{BASE}[sink]\nkind = \"mqtt\"\n[sink.tls]\nca_file = \"c\"\nZZ\n")),
    ];
    let mut sections = sections.to_vec();
    if cfg!(feature = "ort") {
        sections.push((
            "backend (ort)",
            format!("{BASE}[backend]\nkind = \"ort\"\nZZ\n"),
        ));
    }
    if cfg!(feature = "rknn") {
        sections.push((
            "backend (rknn)",
            format!("{BASE}[backend]\nkind = \"rknn\"\nZZ\n"),
        ));
    }
    let book: String = documents()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut undocumented = Vec::new();
    for (section, template) in &sections {
        let keys = known_keys(section, template);
        assert!(!keys.is_empty(), "{section}: no keys found");
        for key in keys {
            // A key, or a table: `[zoom]`, `[sink.tls]`, `[gpio.trigger]`, `[[reid.roi]]`.
            let named = book.contains(&format!("`{key}`"))
                || book.contains(&format!("\n{key} ="))
                || book.contains(&format!("# {key} ="))
                || book.contains(&format!("({key} ="))
                || book.contains(&format!("[{key}]"))
                || book.contains(&format!("[[{key}"))
                || book.contains(&format!(".{key}]"));
            if !named {
                undocumented.push(format!("{section}: {key}"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "keys the code reads that the book does not name:\n{}",
        undocumented.join("\n")
    );
}
