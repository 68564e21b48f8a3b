//! Shell completions and man pages, generated from the clap definitions.

use assert_cmd::Command;

fn out(args: &[&str]) -> String {
    let o = Command::cargo_bin("sembed")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let s = out(&["completions", shell]);
        for word in ["embed", "similarity", "input-format", "with-text"] {
            assert!(s.contains(word), "{shell}: no {word}");
        }
    }
    // bash parses its script.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sembed.bash");
    std::fs::write(&f, out(&["completions", "bash"])).unwrap();
    let check = std::process::Command::new("bash")
        .args(["-n", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let bad = Command::cargo_bin("sembed")
        .unwrap()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_pages() {
    let main = out(&["man"]);
    assert!(
        main.starts_with(".ie") || main.contains(".TH sembed 1"),
        "{main}"
    );
    assert!(main.contains(".TH sembed 1"));
    assert!(main.contains("embed") && main.contains("similarity"));
    let embed = out(&["man", "embed"]);
    assert!(embed.contains(".TH sembed-embed 1"));
    assert!(
        embed.contains("with\\-text") || embed.contains("with-text"),
        "{embed}"
    );
    // groff reads them without warnings.
    let dir = tempfile::tempdir().unwrap();
    let o = Command::cargo_bin("sembed")
        .unwrap()
        .args(["man", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert!(
        pages.contains(&"sembed.1".to_string()) && pages.contains(&"sembed-embed.1".to_string())
    );
    for p in &pages {
        let g = std::process::Command::new("groff")
            // -k: preconv, as man-db runs it (the pages are UTF-8).
            .args(["-k", "-man", "-Tutf8", "-z", "-ww"])
            .arg(dir.path().join(p))
            .output()
            .expect("groff renders man pages");
        assert!(g.status.success(), "{p}");
        assert!(
            g.stderr.is_empty(),
            "{p}: {}",
            String::from_utf8_lossy(&g.stderr)
        );
    }
    let bad = Command::cargo_bin("sembed")
        .unwrap()
        .args(["man", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}
