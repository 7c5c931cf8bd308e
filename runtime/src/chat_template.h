//===- chat_template.h - Hugging Face chat templates (Jinja2) ---*- C++ -*-===//
//
// A model's chat template turns a list of messages into the prompt text it
// was trained on. Models ship it as Jinja2 source (tokenizer_config.json's
// "chat_template", or chat_template.jinja), and a server must render it
// exactly as transformers' `tokenizer.apply_chat_template(messages,
// tokenize=False, add_generation_prompt=...)` does: a byte of difference is
// a different prompt.
//
// There is no Jinja2 for C++ to link, so this is an interpreter of the
// subset chat templates use, with the environment transformers builds
// (transformers/utils/chat_template_utils.py, _cached_compile_jinja_template):
// an ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True,
// the loopcontrols extension ({% break %}, {% continue %}) and the
// {% generation %} tag; the globals raise_exception, strftime_now, dict and
// namespace; and a tojson filter that is json.dumps(ensure_ascii=False,
// indent, separators, sort_keys), without Jinja's HTML escaping.
//
// Values are JSON (nlohmann::ordered_json, so objects keep the order their
// keys came in, as Python dicts do and as tojson and `for k, v in d.items()`
// show). Python's semantics are followed where templates can see them:
// str() and repr() of None/True/lists/dicts/floats, / versus //, negative
// indexes and slices on code points, `in`, chained comparisons, and Jinja's
// default Undefined (printing it gives "", testing it with `is defined`
// works, using it in arithmetic or taking its attribute is an error).
//
// What is refused, with KILN_ERROR_UNSUPPORTED and the construct, line and
// column named: template inheritance and inclusion (extends, block, include,
// import, from), call blocks, filter blocks, with, autoescape, recursive
// loops, *args/**kwargs in calls, and the filters, tests, globals and
// methods not listed in docs/chat-templates.md.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CHAT_TEMPLATE_H
#define KILN_RUNTIME_CHAT_TEMPLATE_H

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace kiln {

namespace chat {
struct Program;
} // namespace chat

/// A parsed chat template. Immutable once parsed: any number of threads may
/// render with it at once.
class ChatTemplate {
public:
  /// Parses Jinja2 `source`; `name` is how messages refer to the template
  /// (e.g. "default"). Throws kiln::Error:
  ///   - KILN_ERROR_FORMAT: a syntax error (unterminated tag, comment or
  ///     string, unbalanced block, unexpected token), e.g. "syntax error at
  ///     line 1 col 4 in chat template 'default': unterminated '{%' tag";
  ///   - KILN_ERROR_UNSUPPORTED: a construct, filter or test this
  ///     interpreter does not implement, e.g. "unsupported Jinja construct
  ///     'extends' at line 3 col 5 in chat template 'default'".
  static ChatTemplate parse(std::string source, std::string name);

  /// Renders the template with the variables of `context` (a JSON object:
  /// messages, add_generation_prompt, bos_token, ...; see
  /// chatTemplateContext). Throws kiln::Error:
  ///   - KILN_ERROR_INVALID_ARGUMENT: the template failed on these inputs:
  ///     it called raise_exception (the message is the template's, e.g. "chat
  ///     template 'default' raised an exception at line 1 col 120:
  ///     Conversation roles must alternate user/assistant/user/assistant/..."),
  ///     used an undefined value, or applied an operation to values of the
  ///     wrong type; `context` is not an object;
  ///   - KILN_ERROR_UNSUPPORTED: it called a global or method that is not
  ///     implemented (only found when that code runs).
  std::string render(const nlohmann::ordered_json &context) const;

  /// The name given to parse().
  const std::string &name() const;

  ChatTemplate(const ChatTemplate &) = default;
  ChatTemplate(ChatTemplate &&) noexcept = default;
  ChatTemplate &operator=(const ChatTemplate &) = default;
  ChatTemplate &operator=(ChatTemplate &&) noexcept = default;
  ~ChatTemplate();

private:
  explicit ChatTemplate(std::shared_ptr<const chat::Program> program);
  std::shared_ptr<const chat::Program> program_;
};

/// A model's chat template as transformers finds it, with the special tokens
/// it passes to the template.
struct ChatTemplateSource {
  /// The Jinja2 source.
  std::string source;
  /// "default", or the name of the entry chosen from a list of templates.
  std::string name;
  /// The file it came from (for messages).
  std::string path;
  /// Variables transformers adds for every render: bos_token, eos_token,
  /// unk_token, sep_token, pad_token, cls_token, mask_token where set, plus
  /// any other "<x>_token" string field and the named extra_special_tokens
  /// (tokenizer.special_tokens_map). Strings, or {"content": ...} objects
  /// turned into their content.
  nlohmann::ordered_json specialTokens = nlohmann::ordered_json::object();
};

/// Reads the chat template of a model or artifact directory the way
/// transformers' from_pretrained does: `dir`/chat_template.jinja if present,
/// else tokenizer_config.json's "chat_template" (a string, or a list of
/// {"name", "template"} from which `templateName`, by default "default", is
/// taken), and the special tokens from tokenizer_config.json (falling back
/// to special_tokens_map.json when the config has no added_tokens_decoder,
/// as transformers' legacy path does). Throws kiln::Error:
/// KILN_ERROR_NOT_FOUND when there is no template (or no entry named
/// `templateName`), KILN_ERROR_FORMAT when a file is not JSON or a field has
/// the wrong type. A `templateFile` replaces the directory's template (as
/// apply_chat_template(chat_template=...) does); the special tokens still
/// come from `dir`.
ChatTemplateSource loadChatTemplateSource(const std::string &dir,
                                          const std::string &templateName = "",
                                          const std::string &templateFile = "");

/// The variables apply_chat_template(messages, tokenize=False,
/// add_generation_prompt=...) gives the template: `source.specialTokens`,
/// then `extra` (keyword arguments such as enable_thinking, which override
/// special tokens), then messages, tools (null), documents (null) and
/// add_generation_prompt. As transformers does, keys whose value is null are
/// dropped from each message, and a message's reasoning (reasoning_content,
/// thinking or reasoning, the first set) is copied to both
/// "reasoning_content" and "thinking". Throws kiln::Error
/// (KILN_ERROR_INVALID_ARGUMENT) when `messages` is not a non-empty array of
/// objects or `extra` is not an object or null.
nlohmann::ordered_json chatTemplateContext(
    const ChatTemplateSource &source, const nlohmann::ordered_json &messages,
    bool addGenerationPrompt, const nlohmann::ordered_json &extra = nullptr);

} // namespace kiln

#endif // KILN_RUNTIME_CHAT_TEMPLATE_H
