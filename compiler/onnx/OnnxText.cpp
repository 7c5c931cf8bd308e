//===- OnnxText.cpp - ONNX's textual syntax -------------------------------===//

#include "compiler/onnx/OnnxText.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <optional>
#include <string>

using namespace kiln;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

namespace {

/// A numeric literal as written: integers keep all 64 bits.
struct Number {
  bool isFloat = false;
  int64_t i = 0;
  double f = 0;
  double asDouble() const { return isFloat ? f : static_cast<double>(i); }
};

class TextParser {
public:
  explicit TextParser(StringRef text) : text(text) {}

  Error parseModel(onnx::ModelProto &model) {
    skipSpace();
    if (Error e = expect('<', "the model header '<ir_version: ..., "
                              "opset_import: [...]>'"))
      return e;
    if (!consume('>')) {
      do {
        if (Error e = parseModelKey(model))
          return e;
      } while (consume(','));
      if (Error e = expect('>', "',' or '>' in the model header"))
        return e;
    }
    if (Error e = parseGraph(*model.mutable_graph()))
      return e;
    skipSpace();
    if (pos < text.size())
      return error("unexpected text after the graph (functions are not "
                   "supported)");
    return Error::success();
  }

private:
  StringRef text;
  size_t pos = 0;

  //===--- lexing ---------------------------------------------------------===//

  void skipSpace() {
    while (pos < text.size()) {
      char c = text[pos];
      if (llvm::isSpace(c)) {
        ++pos;
      } else if (c == '#' || text.substr(pos).starts_with("//")) {
        while (pos < text.size() && text[pos] != '\n')
          ++pos;
      } else {
        break;
      }
    }
  }

  Error error(const llvm::Twine &message) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return llvm::createStringError("line %zu, column %zu: %s", line, col,
                                   message.str().c_str());
  }

  bool peek(char c) {
    skipSpace();
    return pos < text.size() && text[pos] == c;
  }
  bool consume(char c) {
    if (!peek(c))
      return false;
    ++pos;
    return true;
  }
  bool consume(StringRef s) {
    skipSpace();
    if (!text.substr(pos).starts_with(s))
      return false;
    pos += s.size();
    return true;
  }
  Error expect(char c, const llvm::Twine &what) {
    if (consume(c))
      return Error::success();
    return error("expected " + what);
  }

  static bool isIdStart(char c) { return llvm::isAlpha(c) || c == '_'; }
  static bool isIdChar(char c) {
    return llvm::isAlnum(c) || c == '_' || c == '.';
  }

  bool peekId() {
    skipSpace();
    return pos < text.size() && isIdStart(text[pos]);
  }

  Expected<std::string> parseId(const llvm::Twine &what) {
    if (!peekId())
      return error("expected " + what);
    size_t start = pos;
    while (pos < text.size() && isIdChar(text[pos]))
      ++pos;
    return text.slice(start, pos).str();
  }

  bool peekString() { return peek('"'); }

  Expected<std::string> parseString() {
    if (!consume('"'))
      return error("expected a string");
    std::string out;
    while (pos < text.size() && text[pos] != '"') {
      char c = text[pos++];
      if (c == '\\' && pos < text.size())
        c = text[pos++];
      out += c;
    }
    if (pos >= text.size())
      return error("unterminated string");
    ++pos;
    return out;
  }

  bool peekNumber() {
    skipSpace();
    if (pos >= text.size())
      return false;
    char c = text[pos];
    return llvm::isDigit(c) || c == '-' || c == '+' || c == '.';
  }

  Expected<Number> parseNumber() {
    skipSpace();
    size_t start = pos;
    if (pos < text.size() && (text[pos] == '-' || text[pos] == '+'))
      ++pos;
    bool isFloat = false;
    while (pos < text.size()) {
      char c = text[pos];
      if (llvm::isDigit(c)) {
        ++pos;
      } else if (c == '.' || c == 'e' || c == 'E') {
        isFloat = true;
        ++pos;
        if ((c == 'e' || c == 'E') && pos < text.size() &&
            (text[pos] == '-' || text[pos] == '+'))
          ++pos;
      } else {
        break;
      }
    }
    StringRef token = text.slice(start, pos);
    Number n;
    n.isFloat = isFloat;
    if (isFloat) {
      std::string s = token.str();
      char *end = nullptr;
      n.f = std::strtod(s.c_str(), &end);
      if (token.empty() || end != s.c_str() + s.size())
        return error("malformed number '" + token + "'");
      return n;
    }
    StringRef digits = token;
    bool neg = digits.consume_front("-");
    digits.consume_front("+");
    uint64_t u;
    if (digits.empty() || digits.getAsInteger(10, u) ||
        u > (neg ? uint64_t(INT64_MAX) + 1 : uint64_t(INT64_MAX)))
      return error("malformed or out-of-range integer '" + token + "'");
    n.i = neg ? static_cast<int64_t>(0 - u) : static_cast<int64_t>(u);
    return n;
  }

  //===--- types and tensors
  //------------------------------------------------===//

  /// The TensorProto data type named `name` (`float`, `int4`, `bfloat16`...),
  /// looked up in onnx.proto's own enum.
  static std::optional<int32_t> dataType(StringRef name) {
    onnx::TensorProto_DataType t;
    if (name.empty() || name == "undefined" ||
        !onnx::TensorProto_DataType_Parse(name.upper(), &t))
      return std::nullopt;
    return static_cast<int32_t>(t);
  }

  bool peekDataType() {
    if (!peekId())
      return false;
    size_t save = pos;
    Expected<std::string> id = parseId("a type");
    pos = save;
    return id && dataType(*id).has_value();
  }

  /// elem_type [ '[' dims ']' ]
  Error parseTensorType(onnx::TypeProto &type) {
    Expected<std::string> name = parseId("a tensor type such as float[N, 4]");
    if (!name)
      return name.takeError();
    std::optional<int32_t> dt = dataType(*name);
    if (!dt)
      return error("unknown or unsupported type '" + *name +
                   "' (sequence, map and optional types are not supported)");
    auto *tensor = type.mutable_tensor_type();
    tensor->set_elem_type(*dt);
    auto *shape = tensor->mutable_shape();
    if (!consume('['))
      return Error::success(); // `float x` is a scalar
    if (consume(']'))
      return Error::success();
    do {
      auto *dim = shape->add_dim();
      if (consume('?'))
        continue;
      if (peekId()) {
        Expected<std::string> p = parseId("a dimension");
        if (!p)
          return p.takeError();
        dim->set_dim_param(*p);
        continue;
      }
      Expected<Number> n = parseNumber();
      if (!n)
        return n.takeError();
      if (n->isFloat)
        return error("a dimension must be an integer, a name or '?'");
      dim->set_dim_value(n->i);
    } while (consume(','));
    return expect(']', "',' or ']' in a shape");
  }

  /// Stores `values` in the typed field ONNX uses for `t`'s data type.
  Error setTensorValues(onnx::TensorProto &t, llvm::ArrayRef<Number> values,
                        llvm::ArrayRef<std::string> strings) {
    using T = onnx::TensorProto;
    switch (t.data_type()) {
    case T::FLOAT:
      for (const Number &n : values)
        t.add_float_data(static_cast<float>(n.asDouble()));
      break;
    case T::DOUBLE:
      for (const Number &n : values)
        t.add_double_data(n.asDouble());
      break;
    case T::INT64:
      for (const Number &n : values)
        t.add_int64_data(n.i);
      break;
    case T::UINT32:
    case T::UINT64:
      for (const Number &n : values)
        t.add_uint64_data(static_cast<uint64_t>(n.i));
      break;
    case T::STRING:
      for (const std::string &s : strings)
        t.add_string_data(s);
      break;
    default:
      // Everything narrower (and float16/bfloat16/float8 bit patterns, and
      // packed 4-bit pairs) lives in int32_data, as in onnx.parser.
      for (const Number &n : values) {
        if (n.isFloat)
          return error(
              "tensor of type " +
              T::DataType_Name(static_cast<T::DataType>(t.data_type())) +
              " needs integer values (bit patterns for float16)");
        t.add_int32_data(static_cast<int32_t>(n.i));
      }
      break;
    }
    return Error::success();
  }

  /// open literal (',' literal)* close, where a literal is a number or a
  /// string; used by tensor values `{...}` and attribute lists `[...]`.
  Error parseLiterals(char open, char close, const llvm::Twine &what,
                      llvm::SmallVectorImpl<Number> &numbers,
                      llvm::SmallVectorImpl<std::string> &strings) {
    if (Error e = expect(open, llvm::Twine("'") + llvm::Twine(open) +
                                   "' starting " + what))
      return e;
    if (consume(close))
      return Error::success();
    do {
      if (peekString()) {
        Expected<std::string> s = parseString();
        if (!s)
          return s.takeError();
        strings.push_back(*s);
        continue;
      }
      Expected<Number> n = parseNumber();
      if (!n)
        return n.takeError();
      numbers.push_back(*n);
    } while (consume(','));
    return expect(close, llvm::Twine("',' or '") + llvm::Twine(close) +
                             "' in " + what);
  }

  /// '{' literal (',' literal)* '}'
  Error parseTensorValues(onnx::TensorProto &t) {
    llvm::SmallVector<Number> values;
    llvm::SmallVector<std::string> strings;
    if (Error e =
            parseLiterals('{', '}', "the tensor's values", values, strings))
      return e;
    return setTensorValues(t, values, strings);
  }

  /// type[dims] {values}: a tensor-valued attribute.
  Error parseTensorLiteral(onnx::TensorProto &t) {
    onnx::TypeProto type;
    if (Error e = parseTensorType(type))
      return e;
    t.set_data_type(type.tensor_type().elem_type());
    for (const auto &d : type.tensor_type().shape().dim()) {
      if (!d.has_dim_value())
        return error("a tensor literal needs a static shape");
      t.add_dims(d.dim_value());
    }
    return parseTensorValues(t);
  }

  //===--- model, graph, nodes
  //----------------------------------------------===//

  Error parseModelKey(onnx::ModelProto &model) {
    Expected<std::string> key = parseId("a model header key");
    if (!key)
      return key.takeError();
    if (Error e = expect(':', "':' after '" + *key + "'"))
      return e;
    if (*key == "ir_version" || *key == "model_version") {
      Expected<Number> n = parseNumber();
      if (!n)
        return n.takeError();
      (*key == "ir_version" ? model.set_ir_version(n->i)
                            : model.set_model_version(n->i));
      return Error::success();
    }
    if (*key == "opset_import") {
      if (Error e = expect('[', "'[' starting the opset list"))
        return e;
      if (consume(']'))
        return Error::success();
      do {
        Expected<std::string> domain = parseString();
        if (!domain)
          return domain.takeError();
        if (Error e = expect(':', "':' after the opset domain"))
          return e;
        Expected<Number> version = parseNumber();
        if (!version)
          return version.takeError();
        auto *op = model.add_opset_import();
        op->set_domain(*domain);
        op->set_version(version->i);
      } while (consume(','));
      return expect(']', "',' or ']' in the opset list");
    }
    Expected<std::string> value = parseString();
    if (!value)
      return value.takeError();
    if (*key == "producer_name")
      model.set_producer_name(*value);
    else if (*key == "producer_version")
      model.set_producer_version(*value);
    else if (*key == "domain")
      model.set_domain(*value);
    else if (*key == "doc_string")
      model.set_doc_string(*value);
    else
      return error("unknown model header key '" + *key + "'");
    return Error::success();
  }

  Error parseValueInfos(
      google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> &out) {
    if (Error e = expect('(', "'('"))
      return e;
    if (consume(')'))
      return Error::success();
    do {
      onnx::ValueInfoProto info;
      if (Error e = parseTensorType(*info.mutable_type()))
        return e;
      Expected<std::string> name = parseId("a value name");
      if (!name)
        return name.takeError();
      info.set_name(*name);
      *out.Add() = std::move(info);
    } while (consume(','));
    return expect(')', "',' or ')'");
  }

  Error parseGraph(onnx::GraphProto &graph) {
    Expected<std::string> name = parseId("the graph's name");
    if (!name)
      return name.takeError();
    graph.set_name(*name);
    if (Error e = parseValueInfos(*graph.mutable_input()))
      return e;
    if (!consume("=>"))
      return error("expected '=>' between the graph's inputs and outputs");
    if (Error e = parseValueInfos(*graph.mutable_output()))
      return e;
    if (consume('<') && !consume('>')) {
      // Initializers (`type name = {values}`) and value_infos (`type name`).
      do {
        onnx::TypeProto type;
        if (Error e = parseTensorType(type))
          return e;
        Expected<std::string> vname = parseId("a value name");
        if (!vname)
          return vname.takeError();
        if (!consume('=')) {
          auto *info = graph.add_value_info();
          info->set_name(*vname);
          *info->mutable_type() = type;
          continue;
        }
        auto *t = graph.add_initializer();
        t->set_name(*vname);
        t->set_data_type(type.tensor_type().elem_type());
        for (const auto &d : type.tensor_type().shape().dim()) {
          if (!d.has_dim_value())
            return error("initializer '" + *vname + "' needs a static shape");
          t->add_dims(d.dim_value());
        }
        if (Error e = parseTensorValues(*t))
          return e;
      } while (consume(','));
      if (Error e = expect('>', "',' or '>' after the initializers"))
        return e;
    }
    if (Error e = expect('{', "'{' starting the graph's nodes"))
      return e;
    while (!consume('}')) {
      if (pos >= text.size())
        return error("expected '}' closing the graph");
      if (Error e = parseNode(*graph.add_node()))
        return e;
    }
    return Error::success();
  }

  Error parseNode(onnx::NodeProto &node) {
    // outputs '=' [domain '.'] op ['<' attributes '>'] '(' inputs ')'
    if (!peek('=')) {
      do {
        if (peek(',') || peek('=')) {
          node.add_output(""); // an output nobody uses
          continue;
        }
        Expected<std::string> out =
            peekString() ? parseString() : parseId("a node output");
        if (!out)
          return out.takeError();
        node.add_output(*out);
      } while (consume(','));
    }
    if (Error e = expect('=', "'=' after the node's outputs"))
      return e;
    Expected<std::string> op = parseId("an op type");
    if (!op)
      return op.takeError();
    StringRef opRef(*op);
    size_t dot = opRef.rfind('.');
    node.set_op_type(dot == StringRef::npos ? opRef.str()
                                            : opRef.substr(dot + 1).str());
    node.set_domain(dot == StringRef::npos ? "" : opRef.substr(0, dot).str());
    if (consume('<')) {
      do {
        if (Error e = parseAttribute(*node.add_attribute()))
          return e;
      } while (consume(','));
      if (Error e = expect('>', "',' or '>' after the attributes"))
        return e;
    }
    if (Error e = expect('(', "'(' starting the node's inputs"))
      return e;
    if (consume(')'))
      return Error::success();
    do {
      if (peek(',') || peek(')')) {
        node.add_input(""); // an omitted optional input
        continue;
      }
      if (peekString()) {
        Expected<std::string> s = parseString();
        if (!s)
          return s.takeError();
        node.add_input(*s);
        continue;
      }
      Expected<std::string> in = parseId("a node input");
      if (!in)
        return in.takeError();
      node.add_input(*in);
    } while (consume(','));
    return expect(')', "',' or ')' after the node's inputs");
  }

  Error parseAttribute(onnx::AttributeProto &attr) {
    using A = onnx::AttributeProto;
    Expected<std::string> name = parseId("an attribute name");
    if (!name)
      return name.takeError();
    attr.set_name(*name);
    std::optional<A::AttributeType> declared;
    if (consume(':')) {
      Expected<std::string> t = parseId("an attribute type");
      if (!t)
        return t.takeError();
      A::AttributeType at;
      if (!A::AttributeType_Parse(StringRef(*t).upper(), &at))
        return error("unknown attribute type '" + *t + "'");
      declared = at;
    }
    if (Error e = expect('=', "'=' after attribute '" + *name + "'"))
      return e;
    if (peek('{'))
      return error("graph-valued attributes are not supported");
    if (peekString()) {
      Expected<std::string> s = parseString();
      if (!s)
        return s.takeError();
      attr.set_type(A::STRING);
      attr.set_s(*s);
      return Error::success();
    }
    if (peekDataType()) {
      attr.set_type(A::TENSOR);
      return parseTensorLiteral(*attr.mutable_t());
    }
    if (peek('[')) {
      llvm::SmallVector<Number> numbers;
      llvm::SmallVector<std::string> strings;
      if (Error e =
              parseLiterals('[', ']', "the attribute's list", numbers, strings))
        return e;
      bool anyFloat =
          llvm::any_of(numbers, [](const Number &n) { return n.isFloat; });
      A::AttributeType kind = !strings.empty() ? A::STRINGS
                              : anyFloat       ? A::FLOATS
                                               : A::INTS;
      if (declared)
        kind = *declared;
      attr.set_type(kind);
      for (const std::string &s : strings)
        attr.add_strings(s);
      for (const Number &n : numbers) {
        if (kind == A::FLOATS)
          attr.add_floats(static_cast<float>(n.asDouble()));
        else
          attr.add_ints(n.i);
      }
      return Error::success();
    }
    Expected<Number> n = parseNumber();
    if (!n)
      return n.takeError();
    bool isFloat = declared ? *declared == A::FLOAT : n->isFloat;
    attr.set_type(isFloat ? A::FLOAT : A::INT);
    if (isFloat)
      attr.set_f(static_cast<float>(n->asDouble()));
    else
      attr.set_i(n->i);
    return Error::success();
  }
};

} // namespace

bool kiln::looksLikeOnnxText(StringRef bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    char c = bytes[i];
    if (llvm::isSpace(c)) {
      ++i;
    } else if (c == '#' || bytes.substr(i).starts_with("//")) {
      while (i < bytes.size() && bytes[i] != '\n')
        ++i;
    } else {
      return c == '<';
    }
  }
  return false;
}

Error kiln::parseOnnxText(StringRef text, onnx::ModelProto &model) {
  return TextParser(text).parseModel(model);
}
