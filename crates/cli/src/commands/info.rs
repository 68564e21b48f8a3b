//! `sembed info`: what a model is.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::args::InfoArgs;
use crate::model;
use crate::printer::Printer;

pub fn run(args: InfoArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let model = model::load(&args.model, printer)?;
    let i = model.info();
    let fingerprint = i
        .fingerprint()
        .context("cannot compute the model's fingerprint")?;
    let dense: Vec<String> = i.dense.iter().map(|(a, b)| format!("{a}->{b}")).collect();
    let text = if args.json {
        let v = serde_json::json!({
            "name": i.name,
            "architecture": i.architecture,
            "layers": i.layers,
            "hidden_size": i.hidden_size,
            "dimensions": i.dim,
            "max_seq_length": i.max_seq_length,
            "pooling": i.pooling,
            "dense": dense,
            "normalize": i.normalize,
            "tokenizer": i.tokenizer,
            "prompts": i.prompts.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "default_prompt": i.default_prompt,
            "weights": i.weights_dtype,
            "kernels": i.cpu,
            "source": i.source,
            "fingerprint": fingerprint.to_string(),
        });
        format!("{v:#}\n")
    } else {
        let prompts = if i.prompts.is_empty() {
            "none".to_string()
        } else {
            let list: Vec<String> = i
                .prompts
                .iter()
                .map(|(k, v)| {
                    let default = if i.default_prompt.as_ref() == Some(k) {
                        " (default)"
                    } else {
                        ""
                    };
                    format!("{k}={v:?}{default}")
                })
                .collect();
            list.join(", ")
        };
        let dense = if dense.is_empty() {
            "none".to_string()
        } else {
            dense.join(", ")
        };
        format!(
            "name:           {}\narchitecture:   {}\ndimensions:     {}\n\
             max length:     {}\npooling:        {}\ndense:          {}\nnormalize:      {}\n\
             tokenizer:      {}\nprompts:        {}\nweights:        {}\nkernels:        {}\n\
             source:         {}\nfingerprint:    {}\n",
            i.name,
            if i.layers > 0 {
                format!(
                    "{} ({} layers, hidden {})",
                    i.architecture, i.layers, i.hidden_size
                )
            } else {
                i.architecture.clone()
            },
            i.dim,
            i.max_seq_length
                .map_or("no limit".to_string(), |n| format!("{n} tokens")),
            i.pooling.join(" + "),
            dense,
            if i.normalize { "yes" } else { "no" },
            i.tokenizer,
            prompts,
            i.weights_dtype,
            i.cpu,
            i.source,
            fingerprint,
        )
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
