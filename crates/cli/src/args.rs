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
    /// When to colour messages on stderr: auto (a terminal, unless NO_COLOR is set), always, never.
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
