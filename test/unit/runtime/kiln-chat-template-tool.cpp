//===- kiln-chat-template-tool.cpp - drive chat templates from scripts ----===//
//
// Test helper, not an installed tool. Three modes:
//
//   kiln-chat-template-tool TEMPLATE.jinja < CONTEXTS
//       Each input line is a JSON object of template variables (messages,
//       add_generation_prompt, bos_token, ...); each output line is
//       {"ok": true, "text": RENDERED} or {"ok": false, "status":
//       "KILN_ERROR_...", "error": MESSAGE}.
//   kiln-chat-template-tool --model DIR [--name NAME] < REQUESTS
//       Loads DIR's template as a server would (loadChatTemplateSource) and
//       renders each request {"messages": [...], "add_generation_prompt":
//       bool, "variables": {...}} with the variables apply_chat_template
//       gives (chatTemplateContext); output as above.
//   kiln-chat-template-tool --render TEMPLATE.jinja CONTEXT.json
//       Prints the rendered text.
//
// test/runtime/check_chat_templates.py compares the first two modes with
// transformers' own rendering.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/chat_template.h"
#include "runtime/src/error.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

using Json = nlohmann::ordered_json;

namespace {

int usage() {
  std::cerr << "usage: kiln-chat-template-tool TEMPLATE.jinja < CONTEXTS\n"
               "       kiln-chat-template-tool --model DIR [--name NAME] < "
               "REQUESTS\n"
               "       kiln-chat-template-tool --render TEMPLATE.jinja "
               "CONTEXT.json\n";
  return 2;
}

bool readFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

/// One output line for `render`, which may throw kiln::Error.
template <typename Render> void answer(Render &&render) {
  Json out;
  try {
    out = {{"ok", true}, {"text", render()}};
  } catch (const kiln::Error &e) {
    out = {{"ok", false},
           {"status", kiln_status_string(e.status())},
           {"error", e.what()}};
  } catch (const Json::exception &e) {
    out = {{"ok", false}, {"status", "bad input line"}, {"error", e.what()}};
  }
  std::cout << out.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
}

} // namespace

int main(int argc, char **argv) {
  std::ios::sync_with_stdio(false);
  if (argc < 2)
    return usage();
  std::string mode = argv[1];
  try {
    if (mode == "--render") {
      if (argc != 4)
        return usage();
      std::string source, context;
      if (!readFile(argv[2], source) || !readFile(argv[3], context)) {
        std::cerr << "kiln-chat-template-tool: cannot read the input files\n";
        return 1;
      }
      auto tmpl = kiln::ChatTemplate::parse(source, argv[2]);
      std::cout << tmpl.render(Json::parse(context));
      return 0;
    }
    std::string line;
    if (mode == "--model") {
      if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--name"))
        return usage();
      kiln::ChatTemplateSource src =
          kiln::loadChatTemplateSource(argv[2], argc == 5 ? argv[4] : "");
      auto tmpl = kiln::ChatTemplate::parse(src.source, src.name);
      while (std::getline(std::cin, line)) {
        answer([&] {
          Json req = Json::parse(line);
          return tmpl.render(kiln::chatTemplateContext(
              src, req.at("messages"),
              req.value("add_generation_prompt", false),
              req.contains("variables") ? req["variables"] : Json()));
        });
      }
      return 0;
    }
    if (argc != 2 || mode.rfind("--", 0) == 0)
      return usage();
    std::string source;
    if (!readFile(mode, source)) {
      std::cerr << "kiln-chat-template-tool: cannot read " << mode << "\n";
      return 1;
    }
    // A template that does not parse answers every line with the error.
    std::optional<kiln::ChatTemplate> tmpl;
    std::optional<kiln::Error> parseError;
    try {
      tmpl = kiln::ChatTemplate::parse(source, mode);
    } catch (const kiln::Error &e) {
      parseError = e;
    }
    while (std::getline(std::cin, line)) {
      answer([&] {
        if (parseError)
          throw *parseError;
        return tmpl->render(Json::parse(line));
      });
    }
    return 0;
  } catch (const kiln::Error &e) {
    std::cerr << "kiln-chat-template-tool: " << kiln_status_string(e.status())
              << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception &e) {
    std::cerr << "kiln-chat-template-tool: " << e.what() << "\n";
    return 1;
  }
}
