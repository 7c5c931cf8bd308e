/*===- kiln/kiln.h - the kiln runtime C API ----------------------*- C -*-===*
 *
 * The runtime loads compiled `.kiln` artifacts and runs them. This header is
 * the whole public surface; every handle is opaque. Conventions:
 *
 *  - Every call that can fail returns a kiln_status_t. KILN_OK is 0. A call
 *    that fails also records a one-line message for the calling thread,
 *    read with kiln_last_error_message().
 *  - Strings returned by the library are owned by it and live for the whole
 *    process unless a call says otherwise.
 *  - Unless a call says otherwise it is safe to call from any thread.
 *  - Output buffers come with their capacity; a call whose result does not
 *    fit returns KILN_ERROR_BUFFER_TOO_SMALL and reports the size it needs,
 *    so the caller can grow the buffer and call again.
 *
 * Parts: versioning and status reporting, the tokenizer, and models and
 * engines (open a compiled artifact, run steps over a paged KV cache,
 * greedy sampling). docs/runtime-api.md has a worked example.
 *
 *===----------------------------------------------------------------------===*/

#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this runtime, also written into every artifact manifest. */
#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

/** Status codes. Values are stable across versions. */
typedef enum kiln_status_t {
  KILN_OK = 0,
  /** a parameter is out of its range */
  KILN_ERROR_INVALID_ARGUMENT = 1,
  /** a file or name does not exist */
  KILN_ERROR_NOT_FOUND = 2,
  /** an artifact or tokenizer file is malformed or of another version */
  KILN_ERROR_FORMAT = 3,
  /** the file needs what this machine or this version of kiln lacks */
  KILN_ERROR_UNSUPPORTED = 4,
  /** an allocation or the KV cache is exhausted */
  KILN_ERROR_OUT_OF_MEMORY = 5,
  /** a bug in kiln; please report it */
  KILN_ERROR_INTERNAL = 6,
  /** an output buffer is too small; the call reported the size it needs */
  KILN_ERROR_BUFFER_TOO_SMALL = 7,
  /** the scheduler's queue is full, or it is shutting down: retry later */
  KILN_ERROR_BUSY = 8,
  /** nothing happened before the timeout */
  KILN_ERROR_TIMEOUT = 9
} kiln_status_t;

/** The runtime version as "MAJOR.MINOR.PATCH". Never NULL. */
const char *kiln_version_string(void);

/** A short English description of `status`, e.g. "invalid argument".
 *  Unknown values give "unknown status". Never NULL. */
const char *kiln_status_string(kiln_status_t status);

/** What went wrong in the most recent failing kiln call on the calling
 *  thread: one line naming the thing at fault and what was expected, e.g.
 *  `tok.json: model.type is "WordPiece"; kiln supports only "BPE"`.
 *  "" if no call on this thread has failed. Successful calls leave it as it
 *  is, so read it right after the failing call.
 *  The string is owned by kiln and stays valid until the next failing kiln
 *  call on the same thread. Never NULL. Each thread has its own message. */
const char *kiln_last_error_message(void);

/*===-- Tokenizer ---------------------------------------------------------===*
 *
 * Reads a Hugging Face `tokenizer.json` and encodes text to token ids and
 * back, giving the same ids as the `tokenizers` package (checked on thousands
 * of strings by test/runtime/check_tokenizer_agreement.py). Supported:
 *
 *  - model: BPE (vocab + merges; ignore_merges, unk_token, fuse_unk,
 *    byte_fallback, continuing_subword_prefix, end_of_word_suffix); dropout
 *    must be null or 0, since sampled merges would make encoding random;
 *    Unigram (SentencePiece: [piece, score] pairs, unk_id, byte_fallback);
 *  - normalizer: none, Prepend, Replace, Strip, and Sequences of these (no
 *    Unicode normalization: NFKC, Precompiled, Lowercase... are refused);
 *  - pre_tokenizer: none, ByteLevel, Metaspace, Digits, Split (regex or
 *    string), WhitespaceSplit, and a Sequence of these in which ByteLevel or
 *    Metaspace, if present, comes last: the byte-level BPE of GPT-2, Llama 3
 *    and SmolLM2, the SentencePiece models of Llama 2, Mistral, Gemma;
 *  - decoder: none, ByteLevel, Replace, ByteFallback, Fuse, Strip,
 *    Metaspace, and Sequences of these;
 *  - post_processor: none, ByteLevel, TemplateProcessing (its single-sequence
 *    template), RobertaProcessing, BertProcessing, and Sequences of these;
 *  - added tokens with their single_word, lstrip, rstrip and normalized
 *    flags. They are found in the input before pre-tokenization, as
 *    `tokenizers` does: text containing "<|im_start|>" gets that token's
 *    id, so untrusted text can inject control tokens unless the caller
 *    removes them first.
 *
 * "truncation" and "padding" are ignored: kiln never truncates or pads.
 *===----------------------------------------------------------------------===*/

/** A loaded tokenizer. Immutable once loaded: any number of threads may use
 *  one tokenizer at the same time. */
typedef struct kiln_tokenizer_t kiln_tokenizer_t;

/** Loads the `tokenizer.json` at `path` (a NUL-terminated file name).
 *
 *  On success stores a new tokenizer in `*out`; the caller owns it and
 *  releases it with kiln_tokenizer_free(). On failure stores NULL in `*out`
 *  (when `out` is not NULL) and returns:
 *   - KILN_ERROR_INVALID_ARGUMENT: `path` or `out` is NULL;
 *   - KILN_ERROR_NOT_FOUND: the file cannot be opened (missing, a directory,
 *     no permission; the message gives the reason);
 *   - KILN_ERROR_FORMAT: the file is not JSON, or a field is missing, of the
 *     wrong type or inconsistent (e.g. a merge of tokens that are not in the
 *     vocabulary, a regex that does not compile);
 *   - KILN_ERROR_UNSUPPORTED: a model, normalizer, pre-tokenizer, decoder or
 *     post-processor type or option outside the list above;
 *   - KILN_ERROR_OUT_OF_MEMORY: an allocation failed.
 *  Loading SmolLM2's 3.5 MB tokenizer.json takes 0.15-0.25 s. */
kiln_status_t kiln_tokenizer_load(const char *path, kiln_tokenizer_t **out);

/** Releases `tok` and everything it owns (token strings returned by
 *  kiln_tokenizer_id_to_token() included). NULL is ignored. No other call may
 *  be using `tok`, and every detokenizer made from it must already be freed.
 */
void kiln_tokenizer_free(kiln_tokenizer_t *tok);

/** Encodes `len` bytes of UTF-8 at `text` (no NUL terminator needed; NUL
 *  bytes are ordinary characters; `text` may be NULL when `len` is 0).
 *
 *  With `add_special_tokens` nonzero the post-processor's tokens are added
 *  (e.g. Llama 3's <|begin_of_text|>; SmolLM2's and GPT-2's add none).
 *  With a byte-level BPE (GPT-2, Llama 3, SmolLM2) the text yields at most
 *  `len` ids, so `len` plus the post-processor's few tokens suffices; other
 *  models can yield more (byte_fallback spells a character in several ids),
 *  so ask for the count when unsure.
 *
 *  Writes the ids to `ids[0 .. *n_ids)` and returns KILN_OK, or returns:
 *   - KILN_ERROR_BUFFER_TOO_SMALL: more than `capacity` ids; `*n_ids` is the
 *     number needed and `ids` is left as it was (pass `ids` = NULL and
 *     `capacity` = 0 to ask for the count alone);
 *   - KILN_ERROR_INVALID_ARGUMENT: `tok` or `n_ids` is NULL, `text` is NULL
 *     while `len` > 0, `ids` is NULL while `capacity` > 0, or `text` is not
 *     valid UTF-8 (the message gives the byte offset; `tokenizers` cannot
 *     be given such text at all, so kiln rejects it rather than guess);
 *     `*n_ids` is 0;
 *   - KILN_ERROR_INTERNAL: the regex engine gave up (a resource limit);
 *   - KILN_ERROR_OUT_OF_MEMORY.
 *  Thread-safe: many threads may encode with one tokenizer at once. */
kiln_status_t kiln_tokenizer_encode(const kiln_tokenizer_t *tok,
                                    const char *text, size_t len,
                                    int add_special_tokens, int32_t *ids,
                                    size_t capacity, size_t *n_ids);

/** Decodes `n` ids into UTF-8 text, as `tokenizers`' decode does.
 *
 *  With `skip_special_tokens` nonzero, special added tokens (e.g.
 *  <|im_end|>) are left out. Byte sequences that are not valid UTF-8, as when
 *  the ids end inside a multi-byte character, become U+FFFD, one per maximal
 *  invalid subsequence (the Unicode-recommended practice, which `tokenizers`
 *  follows too).
 *
 *  Writes the text and a terminating NUL to `out`, stores its length (NUL
 *  excluded; the text itself may contain NUL bytes) in `*n_bytes` and
 *  returns KILN_OK, or returns:
 *   - KILN_ERROR_BUFFER_TOO_SMALL: `capacity` < `*n_bytes` + 1; `*n_bytes`
 *     is the length needed (pass `out` = NULL, `capacity` = 0 to ask);
 *   - KILN_ERROR_INVALID_ARGUMENT: `tok` or `n_bytes` is NULL, `ids` is NULL
 *     while `n` > 0, `out` is NULL while `capacity` > 0, or an id is not a
 *     token of this tokenizer (`tokenizers` skips such ids silently; kiln
 *     reports them, since they mean the model and tokenizer disagree);
 *     `*n_bytes` is 0;
 *   - KILN_ERROR_OUT_OF_MEMORY.
 *  Thread-safe. */
kiln_status_t kiln_tokenizer_decode(const kiln_tokenizer_t *tok,
                                    const int32_t *ids, size_t n,
                                    int skip_special_tokens, char *out,
                                    size_t capacity, size_t *n_bytes);

/** One more than the largest token id of `tok` (model vocabulary and added
 *  tokens): the number of logits a model for this tokenizer produces at
 *  least. Ids below it that no token has are rejected by decode. 0 when
 *  `tok` is NULL. */
size_t kiln_tokenizer_vocab_size(const kiln_tokenizer_t *tok);

/** Looks up the id of the token spelled `token` (NUL-terminated), added
 *  tokens first, then the model's vocabulary, as `tokenizers`' token_to_id.
 *  Regular byte-level tokens are spelled in the byte-level alphabet (" the"
 *  is "\xC4\xA0the", U+0120 standing for the space); special tokens as
 *  they are ("<|im_end|>").
 *  Returns KILN_OK and stores the id in `*id`, or:
 *   - KILN_ERROR_NOT_FOUND: no such token (`*id` is -1);
 *   - KILN_ERROR_INVALID_ARGUMENT: `tok`, `token` or `id` is NULL. */
kiln_status_t kiln_tokenizer_token_to_id(const kiln_tokenizer_t *tok,
                                         const char *token, int32_t *id);

/** The spelling of token `id` (the inverse of kiln_tokenizer_token_to_id;
 *  use kiln_tokenizer_decode() for text). Stores a NUL-terminated string
 *  owned by `tok`, valid until kiln_tokenizer_free(tok), in `*token` and
 *  returns KILN_OK, or:
 *   - KILN_ERROR_NOT_FOUND: no token has this id (`*token` is NULL);
 *   - KILN_ERROR_INVALID_ARGUMENT: `tok` or `token` is NULL. */
kiln_status_t kiln_tokenizer_id_to_token(const kiln_tokenizer_t *tok,
                                         int32_t id, const char **token);

/** 1 if `id` is a special added token (what decode's `skip_special_tokens`
 *  leaves out, e.g. <|im_end|>), 0 otherwise, also for NULL `tok` and ids
 *  that are not tokens. */
int kiln_tokenizer_is_special(const kiln_tokenizer_t *tok, int32_t id);

/** Incremental decoding for streaming output: ids go in one at a time and
 *  text comes out as soon as no later id can change it, so a character split
 *  over several tokens (common for CJK and emoji) is never emitted half-way.
 *  With byte-fallback tokenizers (Llama 2, Mistral, Gemma) a run of <0xNN>
 *  tokens is held until a token of another kind or the finish ends it, since
 *  the run decodes as a whole (one U+FFFD per byte if it is not UTF-8).
 *  Concatenating everything kiln_detokenizer_push() and
 *  kiln_detokenizer_finish() return gives exactly what
 *  kiln_tokenizer_decode() returns for all the ids pushed.
 *  A detokenizer is used by one thread at a time; any number of them may
 *  share a tokenizer, which must outlive them. */
typedef struct kiln_detokenizer_t kiln_detokenizer_t;

/** Creates a detokenizer for `tok` in `*out`, to be released with
 *  kiln_detokenizer_free(). `skip_special_tokens` as in
 *  kiln_tokenizer_decode(). Returns KILN_OK, or
 *  KILN_ERROR_INVALID_ARGUMENT (`tok` or `out` NULL) or
 *  KILN_ERROR_OUT_OF_MEMORY, storing NULL in `*out` when `out` is not NULL.
 */
kiln_status_t kiln_detokenizer_init(const kiln_tokenizer_t *tok,
                                    int skip_special_tokens,
                                    kiln_detokenizer_t **out);

/** Adds token `id` and writes the text it completes (often empty, never a
 *  partial character) plus a NUL to `out`, its length in `*n_bytes`.
 *  Returns KILN_OK, or, leaving the detokenizer as it was:
 *   - KILN_ERROR_BUFFER_TOO_SMALL: `capacity` < `*n_bytes` + 1, `*n_bytes`
 *     set to the length needed; call again with a larger buffer;
 *   - KILN_ERROR_INVALID_ARGUMENT: `det` or `n_bytes` NULL, `out` NULL while
 *     `capacity` > 0, or `id` not a token (`*n_bytes` is 0).
 *  With a byte-level tokenizer (GPT-2, Llama 3, SmolLM2) the output needs at
 *  most 3 * (the token's decoded bytes + 4) + 1 bytes: up to 3 bytes held
 *  back and a separator join the token's bytes, and each byte becomes at
 *  most one U+FFFD (3 bytes). With byte fallback, the token that ends a run
 *  of <0xNN> tokens releases the whole run (up to 3 bytes per token in it):
 *  there is no fixed bound, so handle KILN_ERROR_BUFFER_TOO_SMALL. */
kiln_status_t kiln_detokenizer_push(kiln_detokenizer_t *det, int32_t id,
                                    char *out, size_t capacity,
                                    size_t *n_bytes);

/** Ends the sequence: writes what is still held back (an incomplete
 *  character, as U+FFFD; a run of byte-fallback tokens) plus a NUL to `out`,
 *  its length in `*n_bytes`, and resets `det` for a new sequence. Errors as
 *  kiln_detokenizer_push(), minus the id check. */
kiln_status_t kiln_detokenizer_finish(kiln_detokenizer_t *det, char *out,
                                      size_t capacity, size_t *n_bytes);

/** Releases `det`. NULL is ignored. */
void kiln_detokenizer_free(kiln_detokenizer_t *det);

/*===-- Chat templates ----------------------------------------------------===*
 *
 * A model's own Jinja2 chat template, rendered as transformers'
 * apply_chat_template(messages, tokenize=False, add_generation_prompt=...)
 * renders it (checked by test/runtime/check_chat_templates.py on the
 * templates of SmolLM2, Llama 3.1, Qwen2.5, Mistral, Phi-3 and Gemma).
 * docs/chat-templates.md lists the Jinja subset. Encode the result with
 * add_special_tokens = 0: the template writes the special tokens itself.
 *===----------------------------------------------------------------------===*/

/** A parsed chat template with the special tokens it is rendered with.
 *  Immutable: any number of threads may render with one at the same time. */
typedef struct kiln_chat_template_t kiln_chat_template_t;

/** Loads the chat template of a model or artifact directory `dir` as
 *  transformers does: `dir`/chat_template.jinja, else tokenizer_config.json's
 *  "chat_template" (a string, or a list of named templates from which `name`
 *  is chosen; NULL or "" means "default"). A `template_file` (NULL or "" for
 *  none) is used instead of the directory's template; the special tokens
 *  (bos_token, eos_token...) still come from `dir`. Stores it in `*out`
 *  (NULL on failure); release it with kiln_chat_template_free(). Returns
 *  KILN_OK, KILN_ERROR_NOT_FOUND (no template, or none named `name`),
 *  KILN_ERROR_FORMAT (a file is not JSON, a template syntax error with its
 *  line and column), KILN_ERROR_UNSUPPORTED (a Jinja construct kiln does not
 *  implement, named with its line and column) or
 *  KILN_ERROR_INVALID_ARGUMENT. */
kiln_status_t kiln_chat_template_load(const char *dir, const char *name,
                                      const char *template_file,
                                      kiln_chat_template_t **out);

/** Releases `tmpl`. NULL is ignored. */
void kiln_chat_template_free(kiln_chat_template_t *tmpl);

/** Renders `messages_json` (NUL-terminated JSON: a non-empty array of
 *  message objects such as {"role": "user", "content": "Hi"}) with
 *  `add_generation_prompt` (0 or 1) and optional extra template variables
 *  `variables_json` (a JSON object such as {"enable_thinking": false}; NULL
 *  or "" for none). Writes the prompt plus a NUL to `out`, its length in
 *  `*n_bytes`. Returns KILN_OK, or:
 *   - KILN_ERROR_BUFFER_TOO_SMALL: `capacity` < `*n_bytes` + 1; call again
 *     with a larger buffer;
 *   - KILN_ERROR_INVALID_ARGUMENT: bad JSON or messages, or the template
 *     failed on them (its raise_exception message, e.g. "Conversation roles
 *     must alternate user/assistant/...", is passed on);
 *   - KILN_ERROR_UNSUPPORTED: the template called a function kiln does not
 *     implement. */
kiln_status_t kiln_chat_template_render(const kiln_chat_template_t *tmpl,
                                        const char *messages_json,
                                        int add_generation_prompt,
                                        const char *variables_json, char *out,
                                        size_t capacity, size_t *n_bytes);

/** The template's name ("default" or the chosen entry), owned by `tmpl`.
 *  "" for NULL. */
const char *kiln_chat_template_name(const kiln_chat_template_t *tmpl);

/*===----------------------------------------------------------------------===*
 * Models and engines
 *===----------------------------------------------------------------------===*/

/** A compiled model: an opened `NAME.kiln` artifact (kilnc's output). It is
 *  read-only once opened, so any number of engines and threads may share
 *  it; it must outlive them. */
typedef struct kiln_model_t kiln_model_t;

/** Opens the artifact directory `path`: reads manifest.json and checks its
 *  format version, that this CPU has every feature the code was compiled
 *  for, and that model.so and weights.bin are present with the recorded
 *  sizes; maps weights.bin read-only and loads model.so. Stores the model in
 *  `*out` (NULL on failure) and returns KILN_OK, or:
 *   - KILN_ERROR_INVALID_ARGUMENT: `path` or `out` is NULL;
 *   - KILN_ERROR_NOT_FOUND: the directory or one of its files is missing;
 *   - KILN_ERROR_FORMAT: malformed manifest, another format or ABI version,
 *     a file of the wrong size (e.g. a truncated weights.bin);
 *   - KILN_ERROR_UNSUPPORTED: compiled for CPU features this machine lacks,
 *     or for another architecture;
 *   - KILN_ERROR_OUT_OF_MEMORY.
 *  Thread-safe. */
kiln_status_t kiln_model_open(const char *path, kiln_model_t **out);

/** Releases a model. Every engine made from it must already be freed. NULL
 *  is ignored. */
void kiln_model_free(kiln_model_t *model);

/** What an artifact was compiled for. Filled by kiln_model_get_info(). */
typedef struct kiln_model_info {
  int64_t vocab_size;       /**< logits per row */
  int64_t context_length;   /**< most tokens one sequence may hold */
  int64_t max_batch_tokens; /**< most tokens one step may carry */
  int64_t layers, kv_heads, head_dim, block_size;
  int64_t arena_bytes; /**< scratch memory of one engine */
  int64_t weights_bytes;
  int32_t num_eos_tokens; /**< ids that end generation (up to 8) */
  int32_t eos_token_ids[8];
  /** NUL-terminated path of the artifact's tokenizer.json, "" if none;
   *  owned by the model. */
  const char *tokenizer_path;
  /** NUL-terminated LLVM name of the CPU the code was compiled for. */
  const char *target_cpu;
} kiln_model_info;

/** Fills `*info`. Returns KILN_ERROR_INVALID_ARGUMENT for NULL arguments. */
kiln_status_t kiln_model_get_info(const kiln_model_t *model,
                                  kiln_model_info *info);

/** Runs a model: owns the scratch arena, the paged KV cache with its block
 *  manager, the sequences and a thread pool. An engine is used by one
 *  thread at a time (calls on one engine must not overlap); separate
 *  engines are independent. */
typedef struct kiln_engine_t kiln_engine_t;

/** Engine settings; initialize with kiln_engine_options_init(). */
typedef struct kiln_engine_options {
  /** Threads the kernels use, the caller's included; 0 = one per core. */
  int32_t num_threads;
  /** KV-cache capacity in tokens over all sequences, rounded up to whole
   *  blocks; 0 = four times the context length. */
  int64_t kv_cache_tokens;
  /** Prefix caching (default 1): full KV blocks no sequence holds any more
   *  stay cached, found by a hash of their tokens and everything before
   *  them, until their memory is needed (least recently released first);
   *  kiln_engine_seq_create_cached() starts a sequence on them. 0: blocks
   *  are reused as soon as they are released. */
  int32_t prefix_cache;
  /** 1: a row's logits never depend on the other rows of the step (the
   *  batch, the chunking), as serving needs for reproducible greedy output.
   *  fp32 matmuls, attention and int8-activation quantized matmuls are so
   *  anyway; quantized matmuls with fp32 activations (MatMulNBits below
   *  accuracy_level 4, or kilnc --quant-compute=f32) then skip their
   *  decode-only path, which sums in another order, at a cost in decode
   *  speed. 0 (default): the fastest kernel for each step. The scheduler
   *  sets it (kiln_scheduler_options). */
  int32_t batch_invariant;
} kiln_engine_options;

/** Sets the defaults (0 threads, 0 cache tokens, prefix cache on, not batch
 *  invariant: see above). */
void kiln_engine_options_init(kiln_engine_options *options);

/** Creates an engine for `model` in `*out` (NULL on failure). `options` may
 *  be NULL for the defaults. Returns KILN_OK, KILN_ERROR_INVALID_ARGUMENT
 *  (NULL model/out, negative options) or KILN_ERROR_OUT_OF_MEMORY (arena or
 *  cache could not be allocated). Thread-safe. */
kiln_status_t kiln_engine_create(kiln_model_t *model,
                                 const kiln_engine_options *options,
                                 kiln_engine_t **out);

/** Frees an engine and everything it holds. NULL is ignored. */
void kiln_engine_free(kiln_engine_t *engine);

/** Starts an empty sequence and stores its id in `*seq` (ids are never
 *  reused by one engine). Returns KILN_OK or KILN_ERROR_INVALID_ARGUMENT. */
kiln_status_t kiln_engine_seq_create(kiln_engine_t *engine, int64_t *seq);

/** Ends sequence `seq` and returns its KV blocks to the pool at once.
 *  Returns KILN_OK, or KILN_ERROR_NOT_FOUND for an unknown id. */
kiln_status_t kiln_engine_seq_free(kiln_engine_t *engine, int64_t seq);

/** Starts a sequence for a prompt of `num_tokens` tokens, holding as many
 *  of its leading full KV blocks as the prefix cache has (never the whole
 *  prompt: at most num_tokens - 1 tokens, so that the first step computes
 *  at least the last prompt token and gives its logits). The sequence's
 *  length is `*cached_tokens` (a multiple of the block size, 0 without a
 *  hit or with the prefix cache off); the next step appends the rest of the
 *  prompt, tokens[*cached_tokens:]. A cached block is shared, never
 *  copied: sequences only write past their own length. Returns KILN_OK or
 *  KILN_ERROR_INVALID_ARGUMENT. */
kiln_status_t kiln_engine_seq_create_cached(kiln_engine_t *engine,
                                            const int32_t *tokens,
                                            int64_t num_tokens, int64_t *seq,
                                            int64_t *cached_tokens);

/** Full blocks the prefix cache can find (held by sequences or not). */
int64_t kiln_engine_cached_blocks(const kiln_engine_t *engine);

/** Tokens sequence `seq` holds (its context so far), or -1 if unknown. */
int64_t kiln_engine_seq_length(const kiln_engine_t *engine, int64_t seq);

/** KV blocks a sequence can get now (free, or cached and held by no
 *  sequence, which are evicted first come first), and the total. */
int64_t kiln_engine_free_blocks(const kiln_engine_t *engine);
int64_t kiln_engine_total_blocks(const kiln_engine_t *engine);

/** New tokens for one sequence in a step. */
typedef struct kiln_seq_tokens {
  int64_t seq;
  const int32_t *tokens;
  int64_t num_tokens; /**< >= 1: a prompt (chunk) or one decoded token */
} kiln_seq_tokens;

/** One forward step over several sequences at once: each gets its tokens
 *  appended (prefill chunks and single decode tokens mixed freely) and the
 *  logits after its last new token are written to row i of `logits`
 *  (`num_seqs` rows of vocab_size floats; `capacity` floats available).
 *  Sequences must be distinct; the total of new tokens at most the
 *  compiled max_batch_tokens. Returns KILN_OK, or, changing nothing:
 *   - KILN_ERROR_INVALID_ARGUMENT: NULL pointers, a repeated or unknown
 *     sequence, num_tokens < 1, a token id outside the vocabulary, more
 *     tokens than max_batch_tokens, or a sequence that would pass the
 *     context length (the message says which);
 *   - KILN_ERROR_BUFFER_TOO_SMALL: `capacity` < num_seqs * vocab_size;
 *   - KILN_ERROR_OUT_OF_MEMORY: not enough free KV blocks for the new
 *     tokens (free sequences, or create the engine with a larger cache);
 *   - KILN_ERROR_INTERNAL: the compiled step reported a failure.
 *  Not thread-safe on one engine. */
kiln_status_t kiln_engine_step(kiln_engine_t *engine,
                               const kiln_seq_tokens *seqs, int64_t num_seqs,
                               float *logits, size_t capacity);

/** Greedy sampling: the index of the largest of `n` logits (the first on
 *  ties), or -1 when `n` < 1 or `logits` is NULL. */
int32_t kiln_argmax(const float *logits, int64_t n);

/*===----------------------------------------------------------------------===*
 * Serving: the scheduler
 *===----------------------------------------------------------------------===*/

/** Continuous batching for services. A scheduler owns an engine and a
 *  thread that runs it: requests submitted from any thread join the running
 *  batch at the next step and leave it when they finish; prompts are
 *  prefilled in chunks under a per-step token budget, decoding requests
 *  first, so a long prompt does not stall the others; a prompt whose
 *  leading full blocks are in the prefix cache skips their prefill. When
 *  the KV cache runs out, the most recently admitted request is preempted
 *  (its blocks freed, recomputed later from its prompt and output so far)
 *  instead of failing. Every call below is thread-safe. docs/runtime-api.md
 *  has a worked example. */
typedef struct kiln_scheduler_t kiln_scheduler_t;

typedef struct kiln_scheduler_options {
  int32_t num_threads;     /**< kernel threads; 0 = one per core */
  int64_t kv_cache_tokens; /**< KV capacity; 0 = the engine's default */
  int32_t prefix_cache;    /**< 1 (default) or 0 */
  /** Most tokens one step carries (decode tokens plus prefill chunks);
   *  0 = the compiled max_batch_tokens, which is also the upper bound. */
  int64_t max_step_tokens;
  /** Most requests in the running batch; 0 = 64. */
  int32_t max_running;
  /** Most requests waiting to be admitted; submit answers KILN_ERROR_BUSY
   *  beyond it. 0 = 256. */
  int32_t max_waiting;
  /** 1 (default): the engine's batch_invariant, so a request's greedy
   *  output is the same whatever else is in the batch; 0: faster decoding
   *  of quantized models with fp32 activations, outputs may then vary
   *  with the batch by rounding. */
  int32_t batch_invariant;
} kiln_scheduler_options;

/** Sets the defaults above. */
void kiln_scheduler_options_init(kiln_scheduler_options *options);

/** Creates a scheduler for `model` (which must outlive it) and starts its
 *  thread. Loads the artifact's tokenizer, if it has one, for the text of
 *  events and stop strings. Returns KILN_OK, KILN_ERROR_INVALID_ARGUMENT,
 *  KILN_ERROR_OUT_OF_MEMORY, or the tokenizer's load error. */
kiln_status_t kiln_scheduler_create(kiln_model_t *model,
                                    const kiln_scheduler_options *options,
                                    kiln_scheduler_t **out);

/** Cancels every request (callbacks get their final CANCELLED event),
 *  stops the thread and frees the scheduler. NULL is ignored. Must not be
 *  called from a callback. */
void kiln_scheduler_free(kiln_scheduler_t *scheduler);

/** Stops accepting requests (submit answers KILN_ERROR_BUSY) and waits up
 *  to `timeout_ms` (< 0: forever) for the running and waiting ones to
 *  finish. Returns KILN_OK when none is left, else KILN_ERROR_TIMEOUT. */
kiln_status_t kiln_scheduler_drain(kiln_scheduler_t *scheduler,
                                   int64_t timeout_ms);

/** Sampling settings of a request; initialize with
 *  kiln_sampling_params_init(). They mean what they mean in the OpenAI API
 *  and vLLM, and are applied in vLLM's order: logit bias, penalties,
 *  temperature, min_p / top_k / top_p, draw. Arrays are copied by submit. */
typedef struct kiln_sampling_params {
  float temperature;        /**< 1; 0 = greedy (argmax) */
  int32_t top_k;            /**< 0 = off */
  float top_p;              /**< 1 = off; in (0, 1] */
  float min_p;              /**< 0 = off; in [0, 1] */
  float repetition_penalty; /**< 1 = off; > 0 */
  float presence_penalty;   /**< 0 = off; in [-2, 2] */
  float frequency_penalty;  /**< 0 = off; in [-2, 2] */
  int32_t has_seed;         /**< 1: `seed` makes the draws reproducible */
  uint64_t seed;
  int64_t max_tokens; /**< 0 = until the context is full */
  int32_t ignore_eos; /**< 1: keep going past the model's EOS tokens */
  /** -1: no logprobs; n in [0, 20]: the token's and the n most likely */
  int32_t logprobs;
  const int32_t *stop_token_ids;
  int32_t num_stop_token_ids;
  /** NUL-terminated strings that end the output and are not part of it */
  const char *const *stop;
  int32_t num_stop;
  const int32_t *logit_bias_tokens; /**< with logit_bias_values: added */
  const float *logit_bias_values;   /**< to those tokens' logits first */
  int32_t num_logit_bias;
} kiln_sampling_params;

/** Sets the defaults above (unseeded sampling at temperature 1). */
void kiln_sampling_params_init(kiln_sampling_params *params);

/** Why a request ended. */
typedef enum kiln_finish_reason {
  KILN_FINISH_NONE = 0,      /**< not finished */
  KILN_FINISH_STOP = 1,      /**< EOS, a stop token id or a stop string */
  KILN_FINISH_LENGTH = 2,    /**< max_tokens, or the context is full */
  KILN_FINISH_CANCELLED = 3, /**< kiln_scheduler_cancel() or shutdown */
  KILN_FINISH_ERROR = 4      /**< see kiln_event::error */
} kiln_finish_reason;

/** "none", "stop", "length", "cancelled" or "error"; "unknown" for other
 *  values. Never NULL. */
const char *kiln_finish_reason_string(kiln_finish_reason reason);

typedef struct kiln_token_logprob {
  int32_t token;
  float logprob;
} kiln_token_logprob;

/** A request's counts and times (seconds since it was submitted). */
typedef struct kiln_usage {
  int64_t prompt_tokens;
  int64_t completion_tokens;
  int64_t cached_prompt_tokens; /**< prompt tokens found in the prefix cache */
  int32_t preemptions;
  double queue_seconds; /**< until first scheduled */
  double ttft_seconds;  /**< until the first generated token */
  double total_seconds; /**< until finished (so far, before the end) */
} kiln_usage;

/** What a request produced: one event per generated token, and a final one
 *  (finish != NONE) that may also carry the last token. */
typedef struct kiln_event {
  uint64_t request;
  int32_t token; /**< the generated token, -1 if the event has none */
  float logprob; /**< NaN unless the request asked for logprobs */
  const kiln_token_logprob *top; /**< `num_top` most likely, best first */
  int32_t num_top;
  /** UTF-8 text released by this event: whole characters only, with any
   *  text that could start a stop string held back until it cannot, and
   *  stop strings removed. Concatenated over all events: the output. Not
   *  NUL-terminated; empty without a tokenizer. */
  const char *text;
  size_t text_length;
  kiln_finish_reason finish;
  const char *error; /**< NUL-terminated; "" unless finish is ERROR */
  kiln_usage usage;
} kiln_event;

/** Receives a request's events on the scheduler thread, in order. The
 *  event and what it points to are valid during the call only. It should
 *  return quickly (every request waits for it); it may call submit, cancel
 *  and get_stats, but not free or drain. */
typedef void (*kiln_event_callback)(const kiln_event *event, void *user_data);

/** Queues a request for `prompt` (`prompt_length` >= 1 tokens, fewer than
 *  the context length, capped at the KV cache's capacity: see
 *  kiln_scheduler_stats::context_length). With a `callback`, events go to it
 * and the request is forgotten after its final event; without one (NULL), they
 * wait for kiln_scheduler_poll(), and the request is kept until
 *  kiln_scheduler_release(). Stores the request's id (never 0, never
 *  reused) in `*request`. Returns KILN_OK, KILN_ERROR_INVALID_ARGUMENT (a
 *  bad prompt or parameter; the message names it and the allowed range),
 *  KILN_ERROR_BUSY (queue full or draining) or KILN_ERROR_UNSUPPORTED
 *  (stop strings without a tokenizer). */
kiln_status_t kiln_scheduler_submit(kiln_scheduler_t *scheduler,
                                    const int32_t *prompt,
                                    int64_t prompt_length,
                                    const kiln_sampling_params *params,
                                    kiln_event_callback callback,
                                    void *user_data, uint64_t *request);

/** Ends a request: it leaves the batch before the next step, its KV blocks
 *  are freed at once, and its final event says CANCELLED (unless it had
 *  already finished). Returns KILN_OK or KILN_ERROR_NOT_FOUND. */
kiln_status_t kiln_scheduler_cancel(kiln_scheduler_t *scheduler,
                                    uint64_t request);

/** Takes the next event of a polled request into `*event`, waiting up to
 *  `timeout_ms` (0: don't wait; < 0: forever). What the event points to
 *  stays valid until the next poll or release of this request. Returns
 *  KILN_OK, KILN_ERROR_TIMEOUT (no event yet), KILN_ERROR_NOT_FOUND
 *  (unknown, released, or a callback request) or KILN_ERROR_INVALID_ARGUMENT.
 *  After the final event, poll answers KILN_ERROR_NOT_FOUND. */
kiln_status_t kiln_scheduler_poll(kiln_scheduler_t *scheduler, uint64_t request,
                                  kiln_event *event, int64_t timeout_ms);

/** Forgets a polled request, cancelling it if it is still running.
 *  Returns KILN_OK or KILN_ERROR_NOT_FOUND. */
kiln_status_t kiln_scheduler_release(kiln_scheduler_t *scheduler,
                                     uint64_t request);

/** A snapshot of the scheduler's state and counters since creation. */
typedef struct kiln_scheduler_stats {
  int64_t waiting, running;
  int64_t kv_blocks_used; /**< held by running requests */
  int64_t kv_blocks_total;
  int64_t kv_blocks_cached; /**< in the prefix cache (used or not) */
  int64_t steps;
  int64_t prompt_tokens, cached_prompt_tokens, generated_tokens;
  int64_t requests_finished, preemptions;
  /** Most tokens (prompt and output) a request may hold: the model's
   *  context length, or the KV cache's capacity when that is smaller.
   *  Submit refuses longer prompts; a request reaching it ends with
   *  KILN_FINISH_LENGTH. */
  int64_t context_length;
} kiln_scheduler_stats;

kiln_status_t kiln_scheduler_get_stats(kiln_scheduler_t *scheduler,
                                       kiln_scheduler_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H */
