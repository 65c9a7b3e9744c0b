use std::time::Duration;

use clap::{CommandFactory, Parser};

use super::ServeArgs;
use crate::{Cli, Command};

fn serve(flags: &[&str]) -> ServeArgs {
    let argv = ["lumen", "serve"].iter().chain(flags).copied();
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(args) => args,
        _ => unreachable!("parsed `lumen serve`"),
    }
}

#[test]
fn duration_flags_take_the_one_duration_grammar() {
    let args = serve(&["--flush-interval", "1h30m", "--query-timeout", "1m30s"]);
    assert_eq!(args.flush_interval, Duration::from_secs(5400));
    assert_eq!(args.query_timeout, Duration::from_secs(90));
    // What the flags accepted before stays accepted.
    let args = serve(&["--flush-interval", "250ms", "--query-timeout", "5"]);
    assert_eq!(args.flush_interval, Duration::from_millis(250));
    assert_eq!(args.query_timeout, Duration::from_secs(5));
    let Err(error) = Cli::try_parse_from(["lumen", "serve", "--flush-interval", "30m1h"]) else {
        panic!("30m1h is not a duration");
    };
    assert!(error.to_string().contains("largest first"), "{error}");
}

#[test]
fn flag_defaults_are_the_crates_defaults() {
    let args = serve(&[]);
    let storage = lumen_storage::StorageConfig::new(&args.data_dir);
    let ingest = lumen_ingest::IngestConfig::default();
    let query = lumen_query::QueryConfig::default();
    assert_eq!(args.max_head_size, storage.max_head_bytes);
    assert_eq!(args.flush_size, storage.flush_bytes);
    assert_eq!(args.flush_interval, storage.flush_interval);
    assert_eq!(args.max_body_size, ingest.max_body_bytes);
    assert_eq!(args.max_attributes, ingest.max_attributes_per_item);
    assert_eq!(args.query_timeout, query.timeout);
    assert_eq!(args.query_memory_limit, query.memory_limit);
    assert_eq!(
        args.sample_cache_size,
        lumen_query::promql::sample_cache::DEFAULT_CAPACITY
    );
    assert_eq!(
        args.query_timeout,
        lumen_query::PromqlConfig::default().timeout
    );
}

/// The README's flag table states the same defaults clap shows in `lumen serve --help`.
#[test]
fn readme_flag_table_matches_the_flags() {
    let readme = include_str!("../../README.md");
    let mut command = Cli::command();
    command.build();
    let serve = command.find_subcommand("serve").unwrap();
    let mut checked = 0;
    for line in readme.lines().filter(|line| line.starts_with("| `--")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (flag, env, default) = (cells[1], cells[2], cells[3]);
        let name = flag.trim_matches('`').trim_start_matches("--");
        let arg = serve
            .get_arguments()
            .find(|arg| arg.get_long() == Some(name))
            .unwrap_or_else(|| panic!("README lists {flag}, which `lumen serve` lacks"));
        assert_eq!(
            arg.get_env().and_then(|env| env.to_str()),
            Some(env.trim_matches('`')),
            "{flag}"
        );
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| format!("`{}`", value.to_string_lossy()))
            .collect();
        if let [clap_default] = defaults.as_slice() {
            assert_eq!(default, clap_default, "README's default for {flag}");
        } else {
            assert!(
                !default.starts_with('`'),
                "{flag} has no single default in clap"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "found the flag table ({checked} rows)");
}
