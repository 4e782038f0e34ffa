//! The README's configuration table must say exactly what `--help` says: every flag, its env var
//! and its default, so the front door cannot drift from the binary.

#![allow(clippy::expect_used)] // a test that cannot read the README has failed, and should say so

use auth_proxy::Cli;
use clap::CommandFactory;

/// One row of the table: (`--flag`, `ENV` or "", default or "").
fn readme_rows() -> Vec<(String, String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- config-table:start -->")
        .expect("config table start marker");
    let end = readme
        .find("<!-- config-table:end -->")
        .expect("config table end marker");
    readme[start..end]
        .lines()
        .filter(|line| line.starts_with("| `--"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // "—" marks "none" in the table.
            let unquote = |s: &str| s.trim_matches('`').replace('—', "");
            (unquote(cells[1]), unquote(cells[2]), unquote(cells[3]))
        })
        .collect()
}

/// The same facts, from clap's own model of the CLI.
fn cli_rows() -> Vec<(String, String, String)> {
    let command = Cli::command();
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter_map(|arg| {
            let long = arg.get_long()?;
            if long == "help" || long == "version" {
                return None;
            }
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A switch's implicit "false" is not a default worth documenting.
            let takes_value = arg.get_action().takes_values();
            let default = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",");
            let default = if takes_value { default } else { String::new() };
            Some((format!("--{long}"), env, default))
        })
        .collect()
}

#[test]
fn readme_configuration_table_matches_the_cli() {
    let mut readme = readme_rows();
    let mut cli = cli_rows();
    readme.sort();
    cli.sort();
    assert!(!cli.is_empty());
    assert_eq!(
        readme, cli,
        "README configuration table differs from `auth-proxy --help`"
    );
}
