//! The one-way data flow is a tested fact: every `crate::` path in `src/` (outside test code)
//! names a module that the table "Who may use whom" in `docs/architecture.md` allows its
//! module to use. A new arrow is a change to that table, which a reviewer sees.

use crate::common;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The table: module → the modules it may use (`None`: any).
fn allowed() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let doc = std::fs::read_to_string(common::root().join("docs/architecture.md")).unwrap();
    let start = doc
        .find("### Who may use whom")
        .expect("the table's heading");
    let mut table = BTreeMap::new();
    for line in doc[start..].lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [module, uses] = cells[..] else {
            panic!("two cells a row: {line}")
        };
        let Some(module) = module.strip_prefix('`').and_then(|m| m.strip_suffix('`')) else {
            continue; // the header and the rule under it
        };
        let uses = match uses {
            "every module" => None,
            "—" => Some(BTreeSet::new()),
            list => Some(
                list.split(',')
                    .map(|u| u.trim().trim_matches('`').to_string())
                    .collect(),
            ),
        };
        table.insert(module.to_string(), uses);
    }
    table
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments, string literals and `#[cfg(test)]` items; the names of
/// module files declared under `#[cfg(test)]` go to `test_files`.
fn code_of(text: &str, dir: &Path, test_files: &mut BTreeSet<PathBuf>) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if let Some(raw) = rest.strip_prefix("r#\"") {
            i += 3 + raw.find("\"#").map_or(raw.len(), |e| e + 2);
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // a character literal such as '{'
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += rest[2..].find('\'').map_or(rest.len(), |e| e + 3);
        } else if let Some(after) = rest.strip_prefix("#[cfg(test)]") {
            let item = after.trim_start();
            let skipped = rest.len() - item.len();
            let head_end = item.find(['{', ';']).unwrap_or(item.len());
            let head = &item[..head_end];
            if item[head_end..].starts_with(';') {
                // `mod name;`: its file is test code.
                if let Some(name) = head.split_whitespace().last() {
                    test_files.insert(dir.join(format!("{name}.rs")));
                    test_files.insert(dir.join(name).join("mod.rs"));
                }
                i += skipped + head_end + 1;
            } else {
                // An item with a body: skip to its closing brace.
                let mut depth = 0usize;
                let mut j = i + skipped + head_end;
                while j < b.len() {
                    match b[j] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j + 1;
            }
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The top-level modules a piece of code names through `crate::`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let group = rest.starts_with('{');
        let names: Vec<&str> = if group {
            let end = rest.find('}').unwrap_or(rest.len());
            rest[1..end]
                .split(',')
                .map(|p| p.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        };
        used.extend(names.into_iter().map(str::to_string));
    }
    used
}

#[test]
fn every_import_follows_the_table_in_the_architecture_doc() {
    let table = allowed();
    let src = common::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = table.keys().cloned().collect();
    let mut test_files = BTreeSet::new();
    let mut codes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        codes.push((f, code_of(&text, f.parent().unwrap(), &mut test_files)));
    }
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for (f, code) in codes {
        if test_files.contains(f) {
            continue;
        }
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.iter().next().unwrap().to_str().unwrap();
        let module = first.strip_suffix(".rs").unwrap_or(first);
        if matches!(module, "lib" | "main") {
            continue;
        }
        let Some(may) = table.get(module) else {
            wrong.push(format!(
                "{}: module `{module}` is not in the table",
                rel.display()
            ));
            continue;
        };
        seen.insert(module.to_string());
        for used in crate_paths(&code) {
            if used == module || !modules.contains(&used) {
                continue; // itself, or a crate-root item (`WireMap`, `hash_addr`)
            }
            if may.as_ref().is_some_and(|m| !m.contains(&used)) {
                wrong.push(format!("{}: uses `{used}`", rel.display()));
            }
        }
    }
    let missing: Vec<_> = modules.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "in the table but not in src/: {missing:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports against docs/architecture.md (\"Who may use whom\"):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_of_paths_finds_what_it_should() {
    let mut tests = BTreeSet::new();
    let code = code_of(
        "use crate::net::Frame;\n// crate::ui in a comment\nlet s = \"crate::cli\";\n\
         use crate::{flow::Call, time::Timestamp};\n#[cfg(test)]\nmod tests { use crate::synth; }\n\
         #[cfg(test)]\nmod testkit;\nfn f() -> char { '{' }\ncrate::export::json::x();",
        Path::new("/x"),
        &mut tests,
    );
    assert_eq!(
        crate_paths(&code),
        ["export", "flow", "net", "time"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert!(tests.contains(Path::new("/x/testkit.rs")));
}
