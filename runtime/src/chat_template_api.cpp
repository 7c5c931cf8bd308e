//===- chat_template_api.cpp - the chat templates' C API ------------------===//
//
// kiln_chat_template_* over kiln::ChatTemplate: messages and extra variables
// arrive as JSON text, the prompt leaves through the buffer-size protocol of
// the tokenizer calls. Nothing here throws (kiln::guard).
//
//===----------------------------------------------------------------------===//

#include "chat_template.h"
#include "error.h"

using namespace kiln;
using Json = nlohmann::ordered_json;

struct kiln_chat_template_t {
  ChatTemplateSource source;
  ChatTemplate program;
};

namespace {

Json parseJson(const char *text, const char *what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error &e) {
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                std::string(what) + ": not valid JSON: " + e.what());
  }
}

} // namespace

extern "C" {

kiln_status_t kiln_chat_template_load(const char *dir, const char *name,
                                      const char *template_file,
                                      kiln_chat_template_t **out) {
  if (out)
    *out = nullptr;
  if (!dir || !out)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_chat_template_load: dir and out must not be NULL");
  return guard("kiln_chat_template_load", [&] {
    ChatTemplateSource source = loadChatTemplateSource(
        dir, name ? name : "", template_file ? template_file : "");
    ChatTemplate program = ChatTemplate::parse(source.source, source.name);
    *out = new kiln_chat_template_t{std::move(source), std::move(program)};
    return KILN_OK;
  });
}

void kiln_chat_template_free(kiln_chat_template_t *tmpl) { delete tmpl; }

kiln_status_t kiln_chat_template_render(const kiln_chat_template_t *tmpl,
                                        const char *messages_json,
                                        int add_generation_prompt,
                                        const char *variables_json, char *out,
                                        size_t capacity, size_t *n_bytes) {
  if (n_bytes)
    *n_bytes = 0;
  if (!tmpl || !messages_json || !n_bytes)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_chat_template_render: tmpl, messages_json and n_bytes "
                "must not be NULL");
  if (!out && capacity > 0)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_chat_template_render: out is NULL but capacity is not 0");
  return guard("kiln_chat_template_render", [&] {
    Json messages = parseJson(messages_json, "messages");
    Json variables = variables_json && *variables_json
                         ? parseJson(variables_json, "chat template variables")
                         : Json();
    std::string text = tmpl->program.render(chatTemplateContext(
        tmpl->source, messages, add_generation_prompt != 0, variables));
    return deliverText(text, out, capacity, n_bytes,
                       "kiln_chat_template_render");
  });
}

const char *kiln_chat_template_name(const kiln_chat_template_t *tmpl) {
  return tmpl ? tmpl->source.name.c_str() : "";
}

} // extern "C"
