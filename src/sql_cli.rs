//! `lumen sql`: a client for `POST /api/v1/sql` that prints aligned tables, CSV or JSON, with an
//! interactive prompt (line editing, history, multi-line statements ending in `;`) when no query is given.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use rustyline::error::ReadlineError;
use serde::Deserialize;

/// Flags of `lumen sql`.
#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    /// The query. Without it, an interactive prompt opens.
    pub query: Option<String>,
    /// Base URL of the Lumen server.
    #[arg(long, env = "LUMEN_SERVER", default_value = crate::DEFAULT_SERVER)]
    pub server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How `lumen sql` prints results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An aligned table, as psql prints.
    Table,
    /// CSV with a header row.
    Csv,
    /// The server's JSON response (columns and rows).
    Json,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

struct Client {
    http: reqwest::Client,
    url: String,
    server: String,
}

impl Client {
    fn new(server: &str) -> anyhow::Result<Client> {
        let server = server.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .build()
            .context("cannot create an HTTP client")?;
        Ok(Client {
            http,
            url: format!("{server}/api/v1/sql"),
            server,
        })
    }

    /// Runs `query`; returns the body to print, or the server's error message.
    async fn run(&self, query: &str, format: Format) -> anyhow::Result<Result<String, String>> {
        let wire_format = match format {
            Format::Csv => "csv",
            Format::Table | Format::Json => "json",
        };
        let response = self
            .http
            .post(format!("{}?format={wire_format}", self.url))
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .with_context(|| format!("cannot reach Lumen at {}; is `lumen serve` running there? (pass --server to use another address)", self.server))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .context("the server closed the connection mid-answer")?;
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or(body);
            return Ok(Err(format!("{message} (HTTP {})", status.as_u16())));
        }
        Ok(Ok(match format {
            Format::Table => render(&body)?,
            Format::Csv | Format::Json => body,
        }))
    }
}

fn render(body: &str) -> anyhow::Result<String> {
    let parsed: lumen_query::sql::format::JsonResult =
        serde_json::from_str(body).context("the server sent a response this client cannot read")?;
    let rows = parsed.rows.len();
    let mut out = lumen_query::sql::format::render_table(&parsed.columns, &parsed.rows);
    out.push_str(&format!(
        "({rows} row{})\n",
        if rows == 1 { "" } else { "s" }
    ));
    Ok(out)
}

/// Runs `lumen sql`.
pub async fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    match &args.query {
        Some(query) => match client.run(query, args.format).await? {
            Ok(out) => {
                print!("{out}");
                Ok(ExitCode::SUCCESS)
            }
            Err(message) => {
                eprintln!("error: {message}");
                Ok(ExitCode::from(1))
            }
        },
        None => interactive(client, args.format).await,
    }
}

async fn interactive(client: Client, format: Format) -> anyhow::Result<ExitCode> {
    let mut editor =
        rustyline::DefaultEditor::new().context("cannot open the terminal for the prompt")?;
    let history =
        std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".lumen_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "lumen sql — connected to {}. End statements with ';'. \\q quits, \\dt lists tables, \\d TABLE describes one.",
        client.server
    );
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "lumen> "
        } else {
            "  ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading the prompt"),
        };
        let trimmed = line.trim();
        if statement.is_empty() {
            if trimmed.is_empty() {
                continue;
            }
            if let Some(meta) = trimmed.strip_prefix('\\') {
                let _ = editor.add_history_entry(trimmed);
                match meta_command(meta) {
                    MetaCommand::Quit => break,
                    MetaCommand::Query(query) => execute(&client, &query, format).await,
                    MetaCommand::Unknown => {
                        eprintln!("unknown command \\{meta}; try \\q, \\dt or \\d TABLE")
                    }
                }
                continue;
            }
        }
        statement.push_str(&line);
        statement.push('\n');
        if trimmed.ends_with(';') {
            let query = statement.trim().trim_end_matches(';').to_string();
            let _ = editor.add_history_entry(statement.trim());
            statement.clear();
            execute(&client, &query, format).await;
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(ExitCode::SUCCESS)
}

enum MetaCommand {
    Quit,
    Query(String),
    Unknown,
}

fn meta_command(meta: &str) -> MetaCommand {
    let mut words = meta.split_whitespace();
    match (words.next(), words.next()) {
        (Some("q"), _) => MetaCommand::Quit,
        (Some("dt"), _) => MetaCommand::Query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name".into(),
        ),
        (Some("d"), Some(table)) => MetaCommand::Query(format!(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = '{}' ORDER BY ordinal_position",
            table.replace('\'', "''")
        )),
        _ => MetaCommand::Unknown,
    }
}

async fn execute(client: &Client, query: &str, format: Format) {
    let started = Instant::now();
    match client.run(query, format).await {
        Ok(Ok(out)) => {
            print!("{out}");
            if format == Format::Table {
                println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Ok(Err(message)) => eprintln!("error: {message}"),
        Err(e) => eprintln!("error: {e:#}"),
    }
}
