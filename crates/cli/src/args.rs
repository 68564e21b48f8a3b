//! Command-line definitions (clap), apart from their execution (`commands/`). The man page and the
//! shell completions are generated from these same definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Sentence embeddings from sentence-transformers models, natively, in milliseconds.
#[derive(Debug, Parser)]
#[command(name = "sembed", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// No notes or progress on stderr (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// When to use colour (messages on stderr, search hits on stdout): auto (a terminal, unless
    /// NO_COLOR is set), always, never.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        global = true,
        value_name = "WHEN"
    )]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed texts (arguments, a file, or stdin) and write the vectors.
    Embed(EmbedArgs),
    /// Cosine similarity of the first text with each of the others (or all pairs with --matrix).
    Similarity(SimilarityArgs),
    /// Show what a model is: architecture, dimensions, max length, pooling, normalization, source.
    Info(InfoArgs),
    /// Search files by meaning: the best chunks for QUERY under PATHs (default: this folder),
    /// from an index that only re-embeds what changed.
    #[command(after_help = SEARCH_AFTER)]
    Search(SearchArgs),
    /// Build or update the search index for PATHs without searching, and say what was done; or
    /// show what the index holds (--stats), or delete it (--clear).
    Index(IndexArgs),
    /// The embedding cache of `sembed embed --cache`: what it holds, or clear it.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Serve embeddings over HTTP to OpenAI, Hugging Face TEI and Ollama clients, with dynamic
    /// batching and hard limits.
    #[command(after_help = SERVE_AFTER)]
    Serve(ServeArgs),
    /// Distill a transformer into a Model2Vec static model (as Python model2vec's distill()).
    #[cfg(feature = "distill")]
    Distill(DistillArgs),
    /// Models in the Hugging Face cache: list, pull, rm, and the short aliases.
    #[cfg(feature = "hub")]
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): `sembed man > sembed.1`, `sembed man embed > sembed-embed.1`, or
    /// write them all with `--dir`.
    Man {
        /// The subcommand whose page to print (default: the main page).
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
        /// Write `sembed.1` and one `sembed-COMMAND.1` per command into DIR instead.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        dir: Option<PathBuf>,
    },
}

const SERVE_AFTER: &str = "\
Routes:
  POST /v1/embeddings, GET /v1/models            OpenAI
  POST /embed, /similarity, /tokenize, /         Hugging Face text-embeddings-inference (TEI)
  GET /info, /health
  POST /api/embed, /api/embeddings, GET /api/tags  Ollama
  GET /metrics (Prometheus), /openapi.json

Examples:
  sembed serve --port 8080
  curl -s localhost:8080/v1/embeddings -H 'Content-Type: application/json' \\
       -d '{\"model\": \"all-MiniLM-L6-v2\", \"input\": [\"hello\", \"world\"]}'
  sembed serve -m all-MiniLM-L6-v2 -m path/to/other-model --api-key \"$KEY\"

Once it answers, one line `listening on http://HOST:PORT` is written on stderr; each request then
writes an access-log line (not with --quiet). SIGTERM or SIGINT: stop accepting, finish requests in
flight (up to --shutdown-grace), exit 0.";

const SEARCH_AFTER: &str = "\
Examples:
  sembed search 'how are retries configured' src docs
  sembed search -k 3 --json 'error handling' | jq .path
  sembed search --mode lexical 'ECONNRESET'
  journalctl -b | sembed search 'disk is failing' -

The index lives in the user cache folder ($XDG_CACHE_HOME/sembed/index.sqlite) unless --index
says otherwise (another file, or a postgres:// URL: PostgreSQL + pgvector), never in the searched
tree. Scores: cosine similarity (semantic), BM25 (lexical),
reciprocal-rank fusion of both (hybrid; --threshold then compares the cosine).

Exit status: 0 if a hit was printed, 1 if there was none, 2 on an error.";

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// What the cache holds: vectors, bytes, the index beside it, prepared weights and
    /// vocabularies.
    Stats {
        #[command(flatten)]
        at: CacheDirArg,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete the cached vectors (those no search index uses); the index stays.
    Clear {
        #[command(flatten)]
        at: CacheDirArg,
        /// Also delete the prepared copies of model weights and tokenizer vocabularies
        /// ($XDG_CACHE_HOME/sembed/prepared: a weights copy is the size of its model's weights
        /// file; the next load of a model makes its copies again).
        #[arg(long)]
        prepared: bool,
    },
}

/// Where the cache (and the default search index) is.
#[derive(Debug, Args)]
pub struct CacheDirArg {
    /// The folder of the cache database `index.sqlite` (default: $XDG_CACHE_HOME/sembed).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Which files a search looks at (as ripgrep chooses them).
#[derive(Debug, Args)]
pub struct WalkArgs {
    /// Search hidden files and folders too.
    #[arg(long, short = '.')]
    pub hidden: bool,
    /// Do not honour .gitignore, .ignore and the like.
    #[arg(long)]
    pub no_ignore: bool,
    /// Only files matching GLOB (repeatable; `!GLOB` excludes), as ripgrep's -g.
    #[arg(long, short = 'g', value_name = "GLOB")]
    pub glob: Vec<String>,
    /// Skip files larger than SIZE (suffixes K, M, G), counted in what `index` prints.
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_size)]
    pub max_filesize: u64,
    /// Follow symbolic links (loops are skipped with a warning).
    #[arg(long, short = 'L')]
    pub follow: bool,
}

impl WalkArgs {
    pub fn options(&self) -> sembed_index::WalkOptions {
        sembed_index::WalkOptions {
            hidden: self.hidden,
            no_ignore: self.no_ignore,
            globs: self.glob.clone(),
            max_filesize: self.max_filesize,
            follow: self.follow,
            exclude: Vec::new(),
        }
    }
}

/// `4M` → 4,194,304: K, M and G are powers of 1024, as in ripgrep.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (a number, with K, M or G after it)"))
}

/// Where the index is and how files are cut.
#[derive(Debug, Args)]
pub struct IndexingArgs {
    /// The index: an SQLite file (default: $XDG_CACHE_HOME/sembed/index.sqlite), or PostgreSQL +
    /// pgvector as postgres://USER@HOST/DB[?table=NAME&scan=hnsw|exact] (libpq URL syntax; a Unix
    /// socket as ?host=/socket/dir; password from the URL, PGPASSWORD or ~/.pgpass).
    #[arg(long, value_name = "FILE|URL")]
    pub index: Option<PathBuf>,
    /// Most tokens per chunk (default and maximum: what the model takes).
    #[arg(long, value_name = "N")]
    pub chunk_tokens: Option<usize>,
    /// Tokens of whole lines a chunk repeats from the one before it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub overlap: usize,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,
}

impl IndexingArgs {
    pub fn options(&self) -> sembed_index::IndexOptions {
        sembed_index::IndexOptions {
            chunk_tokens: self.chunk_tokens,
            overlap_tokens: self.overlap,
            threads: self.threads.unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ModeArg {
    Semantic,
    Lexical,
    Hybrid,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for, in plain words.
    #[arg(value_name = "QUERY")]
    pub query: String,
    /// Files or folders to search (default: the current folder); `-` reads standard input as one
    /// more document.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How many hits to show.
    #[arg(long, short = 'k', value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Drop hits below S (cosine similarity; BM25 score with --mode lexical).
    #[arg(long, value_name = "S")]
    pub threshold: Option<f32>,
    /// Print only the files of the best hits, each once, best first (at most --top).
    #[arg(long, short = 'l')]
    pub files_with_matches: bool,
    /// Lines of context around each line shown.
    #[arg(long, short = 'C', value_name = "N", default_value_t = 0)]
    pub context: usize,
    /// JSON Lines: one object per hit, best first: path, start_line, end_line, score, text, …
    #[arg(long)]
    pub json: bool,
    /// Ranking.
    #[arg(long, value_enum, default_value = "hybrid")]
    pub mode: ModeArg,
    /// Search the index as it is, without looking at the files (works when they are gone).
    #[arg(long)]
    pub no_update: bool,
    /// Delete the index first and build it again.
    #[arg(long, conflicts_with = "no_update")]
    pub rebuild: bool,
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub indexing: IndexingArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Files or folders to index (default: the current folder).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Show what the index holds instead (all models).
    #[arg(long, conflicts_with = "clear")]
    pub stats: bool,
    /// Delete the index (and the embedding cache kept in it), whatever state it is in.
    #[arg(long)]
    pub clear: bool,
    /// Print the report (or --stats) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub indexing: IndexingArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[cfg(feature = "hub")]
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Models in the Hugging Face cache (shared with Python), with their size and revisions.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a model into the cache (or check that it is there), and print its folder.
    Pull {
        /// `org/name[@revision]` or an alias.
        #[arg(value_name = "MODEL")]
        model: String,
        /// Ask the hub for the revision's current commit even if the cache has the model.
        #[arg(long)]
        refresh: bool,
        /// No network: only check the cache.
        #[arg(long)]
        offline: bool,
    },
    /// Delete a model (all its revisions) from the cache.
    Rm {
        /// `org/name` or an alias.
        #[arg(value_name = "MODEL")]
        model: String,
    },
    /// Short names accepted wherever a model is named.
    Aliases,
}

/// Which model to use.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A model directory; a Hugging Face id `org/name[@revision]`; an alias such as `all-MiniLM-L6-v2`
    /// (`sembed models aliases`); or `builtin` (the default: all-MiniLM-L6-v2, float16, compiled into
    /// this binary). Ids are looked up in the Hugging Face cache first and downloaded only if missing;
    /// all-MiniLM-L6-v2 never goes to the network (the built-in copy stands in for it).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Never use the network (as HF_HUB_OFFLINE=1): a model id must already be in the cache.
    #[arg(long)]
    pub offline: bool,
}

/// `sembed serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A model to serve, as --model of the other commands (default: the built-in
    /// all-MiniLM-L6-v2). Repeat to serve several: a request's `model` field picks one by the
    /// name given here, its alias or its hub id (the first when a request names none). With one
    /// model, any `model` value is accepted.
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Vec<String>,
    /// Never use the network (as HF_HUB_OFFLINE=1): model ids must already be in the cache.
    #[arg(long)]
    pub offline: bool,
    /// Address to listen on. The default answers this machine only; 0.0.0.0 (or ::) opens the
    /// server to the network.
    #[arg(long, default_value_t = sembed_server::Config::default().host)]
    pub host: String,
    /// Port (0: any free port; the line on stderr says which).
    #[arg(long, short = 'p', default_value_t = sembed_server::Config::default().port)]
    pub port: u16,
    /// Requests served at once (queued or computing); beyond it a request gets 429 at once.
    #[arg(long, value_name = "N", default_value_t = sembed_server::Config::default().max_concurrent_requests)]
    pub max_concurrent_requests: usize,
    /// Tokens per engine batch: concurrent requests are joined up to it, a larger request is
    /// split into pieces of at most this many tokens (and put back together in order).
    #[arg(long, value_name = "N", default_value_t = sembed_server::Config::default().max_batch_tokens)]
    pub max_batch_tokens: usize,
    /// Inputs in one request (more: 413).
    #[arg(long, value_name = "N", default_value_t = sembed_server::Config::default().max_client_batch_size)]
    pub max_client_batch_size: usize,
    /// Bytes of one request body, with K/M/G suffixes (more: 413).
    #[arg(long, value_name = "SIZE", default_value = "2000000", value_parser = parse_size)]
    pub payload_limit: u64,
    /// Cut inputs over the model's token limit unless a request says `truncate: false` (as
    /// TEI's --auto-truncate); without it such an input is a 422. Ollama's route always
    /// truncates unless told not to, as Ollama does.
    #[arg(long)]
    pub auto_truncate: bool,
    /// Require `Authorization: Bearer KEY` on every route but /health (401 otherwise).
    #[arg(
        long,
        value_name = "KEY",
        env = "SEMBED_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Seconds to wait for a request's headers, also between requests on a kept-alive
    /// connection.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub header_read_timeout: f64,
    /// Seconds to wait for a request's body (408 after).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    pub body_read_timeout: f64,
    /// Seconds requests in flight may take to finish after SIGTERM/SIGINT.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    pub shutdown_grace: f64,
    /// Threads for HTTP and JSON (the embedding uses the engine's threads; 0: one per core, at
    /// most 4).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub http_threads: usize,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{s:?}: expected seconds, more than 0 and at most 86400"
        )),
    }
}

/// How to run the model.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// L2-normalize the vectors (overrides the model's modules).
    #[arg(long, overrides_with = "no_normalize")]
    pub normalize: bool,
    /// Do not L2-normalize, even if the model has a Normalize module.
    #[arg(long)]
    pub no_normalize: bool,
    /// Truncate inputs to N tokens, special tokens included (default: the model's max_seq_length).
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// Make an over-long text an error instead of cutting it to the max length.
    #[arg(long)]
    pub no_truncate: bool,
    /// Keep only the first N dimensions (Matryoshka models), after the model's own normalization;
    /// add --normalize to re-normalize the shortened vectors.
    #[arg(long, value_name = "N")]
    pub truncate_dim: Option<usize>,
    /// Prepend the model's prompt of this name (config_sentence_transformers.json), e.g. `query`.
    #[arg(long, value_name = "NAME")]
    pub prompt_name: Option<String>,
    /// Prepend this text to every input (overrides --prompt-name and the model's default prompt).
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Texts per forward pass.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,
}

impl RunArgs {
    pub fn options(&self) -> sembed::EmbedOptions {
        sembed::EmbedOptions {
            batch_size: self.batch_size,
            threads: self.threads.unwrap_or(0),
            normalize: if self.normalize {
                Some(true)
            } else if self.no_normalize {
                Some(false)
            } else {
                None
            },
            max_length: self.max_length,
            truncate: !self.no_truncate,
            truncate_dim: self.truncate_dim,
            prompt_name: self.prompt_name.clone(),
            prompt: self.prompt.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Jsonl,
    Npy,
    F32,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PrecisionArg {
    Float32,
    Int8,
    Uint8,
    Binary,
    Ubinary,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum InputFormat {
    /// One text per line.
    Lines,
    /// One JSON value per line: a string, or an object with a "text" field (and optionally "id").
    Jsonl,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Texts to embed. Without texts or --input, stdin is read (one text per line).
    #[arg(value_name = "TEXT")]
    pub texts: Vec<String>,
    /// Read texts from FILE (`-` for stdin).
    #[arg(long, short = 'i', value_name = "FILE", conflicts_with = "texts")]
    pub input: Option<PathBuf>,
    /// How input is split into texts (default: jsonl for a .jsonl/.ndjson file, else lines).
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormat>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "jsonl")]
    pub format: OutputFormat,
    /// Write to FILE instead of stdout (`-` is stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Add each input text to the output (jsonl: a "text" field; csv: a first column).
    #[arg(long)]
    pub with_text: bool,
    /// csv: start with a header row (`text,` with --with-text, then `e0,e1,…`).
    #[arg(long)]
    pub header: bool,
    /// Quantize as sentence-transformers' quantize_embeddings: int8/uint8 scale each dimension over
    /// its range (from --calibration, else from these inputs); binary/ubinary pack sign bits.
    #[arg(long, value_enum, default_value = "float32")]
    pub precision: PrecisionArg,
    /// float32 .npy (n, dim) of embeddings whose per-dimension min/max set the int8/uint8 ranges.
    #[arg(long, value_name = "NPY")]
    pub calibration: Option<PathBuf>,
    /// Look each text up in the embedding cache and embed only the others (the output is the
    /// same); bypassed for static models, which compute faster than a lookup.
    #[arg(long)]
    pub cache: bool,
    /// The cache's folder (implies --cache; default: $XDG_CACHE_HOME/sembed).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct SimilarityArgs {
    /// Two or more texts.
    #[arg(value_name = "TEXT", num_args = 2.., required = true)]
    pub texts: Vec<String>,
    /// Print the full n × n matrix (tab-separated rows) instead of one number per other text.
    #[arg(long)]
    pub matrix: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DistillArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// PCA dimensions of the static model (at most the model's dimension).
    #[arg(long, default_value_t = 256)]
    pub dims: usize,
    /// SIF coefficient for the Zipf-based token weights.
    #[arg(long, default_value_t = 1e-4)]
    pub sif_coefficient: f64,
    /// Directory to create (must not exist, or be empty).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,
}
