/** Embedding options (all optional). */
export interface EmbedOptions {
  /** Force L2 normalization on or off; default: what the model's modules say. */
  normalize?: boolean;
  /** Sequences per forward pass (default 32). */
  batchSize?: number;
  /** Truncation length in tokens; default: the model's max_seq_length. */
  maxLength?: number;
  /** Keep only the first N dimensions (Matryoshka). */
  truncateDim?: number;
  /** A literal prompt prepended to every text. */
  prompt?: string;
  /** A prompt by name from config_sentence_transformers.json (e.g. "query"). */
  promptName?: string;
}

/** Facts about a loaded model. */
export interface ModelInfo {
  name: string;
  kind: "transformer" | "static";
  architecture: string;
  layers: number;
  hiddenSize: number;
  dim: number;
  maxSeqLength: number | null;
  pooling: string[];
  normalize: boolean;
  tokenizer: string;
  prompts: Record<string, string>;
  defaultPrompt: string | null;
  weightsDtype: string;
  cpu: string;
}

export declare class Model {
  /** The vector dimension. */
  readonly dim: number;
  /** One vector per text, in input order. */
  embed(texts: string[], options?: EmbedOptions): Float32Array[];
  embed(text: string, options?: EmbedOptions): Float32Array;
  info(): ModelInfo;
  /** Frees the model's WebAssembly memory now. */
  free(): void;
}

/** A model from its folder's files, by relative name (e.g. "1_Pooling/config.json"). */
export declare function load(
  files: Record<string, Uint8Array | ArrayBuffer> | Map<string, Uint8Array | ArrayBuffer>,
): Promise<Model>;

/** Cosine similarity of two vectors of the same length (after a `load`). */
export declare function similarity(a: Float32Array, b: Float32Array): number;
