//===- engine.cpp - compiled models, engines, the paged KV cache ----------===//
//
// kiln_model_t is an opened artifact: the checked manifest, weights.bin
// mapped read-only and model.so loaded. kiln_engine_t owns what a model
// needs to run: the scratch arena the compiled step was planned for, the
// KV-cache block pool with its free list, the sequences (each a list of
// blocks and a length) and the thread pool the kernels use.
//
//===----------------------------------------------------------------------===//

#include "error.h"
#include "kernels/kernels.h"
#include "threadpool.h"

#include "kiln/kiln.h"
#include "kiln/model_abi.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using kiln::Error;

namespace {

/// The format kilnc writes (compiler/artifact/ArtifactWriter.h).
constexpr int kFormatVersion = 1;

std::string join(const std::string &dir, const std::string &name) {
  return dir + "/" + name;
}

/// x86 features kilnc may require, and whether this CPU has them. The names
/// are LLVM's, as the manifest spells them.
bool cpuHas(const std::string &f, bool &known) {
  known = true;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
#define KILN_FEATURE(name)                                                     \
  if (f == name)                                                               \
    return __builtin_cpu_supports(name);
  KILN_FEATURE("sse3")
  KILN_FEATURE("ssse3")
  KILN_FEATURE("sse4.1")
  KILN_FEATURE("sse4.2")
  KILN_FEATURE("popcnt")
  KILN_FEATURE("avx")
  KILN_FEATURE("avx2")
  KILN_FEATURE("fma")
  KILN_FEATURE("bmi")
  KILN_FEATURE("bmi2")
  KILN_FEATURE("avx512f")
  KILN_FEATURE("avx512bw")
  KILN_FEATURE("avx512cd")
  KILN_FEATURE("avx512dq")
  KILN_FEATURE("avx512vl")
  KILN_FEATURE("avx512vnni")
  KILN_FEATURE("avx512bf16")
  KILN_FEATURE("avx512vbmi")
  KILN_FEATURE("avx512vbmi2")
  KILN_FEATURE("avx512bitalg")
  KILN_FEATURE("avx512vpopcntdq")
  KILN_FEATURE("avx512fp16")
  KILN_FEATURE("gfni")
  KILN_FEATURE("vaes")
  KILN_FEATURE("vpclmulqdq")
  KILN_FEATURE("avxvnni")
#undef KILN_FEATURE
#endif
  known = false;
  return false;
}

int64_t fileSize(const std::string &path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return -1;
  return static_cast<int64_t>(st.st_size);
}

} // namespace

struct kiln_model_t {
  std::string dir;
  kiln_model_info info{};
  /// Keys a query at position p sees start at p - kvWindow when every layer
  /// attends a sliding window (-1: some layer sees every earlier key);
  /// blocks before that are freed.
  int64_t kvWindow = -1;
  std::string tokenizerPath, targetCpu;
  void *library = nullptr;
  kiln_model_step_fn step = nullptr;
  void *weights = nullptr;
  size_t weightsSize = 0;

  ~kiln_model_t() {
    if (weights && weights != MAP_FAILED)
      munmap(weights, weightsSize);
    if (library)
      dlclose(library);
  }
};

namespace {

std::unique_ptr<kiln_model_t> openModel(const std::string &dir) {
  auto m = std::make_unique<kiln_model_t>();
  m->dir = dir;
  std::string manifestPath = join(dir, "manifest.json");
  std::ifstream in(manifestPath);
  if (!in)
    throw Error(KILN_ERROR_NOT_FOUND,
                "cannot open '" + manifestPath + "': not a kiln artifact");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception &e) {
    throw Error(KILN_ERROR_FORMAT,
                "'" + manifestPath + "' is not valid JSON: " + e.what());
  }
  auto need = [&](const nlohmann::json &obj, const char *key,
                  const std::string &where) -> const nlohmann::json & {
    if (!obj.is_object() || !obj.contains(key))
      throw Error(KILN_ERROR_FORMAT,
                  "'" + manifestPath + "': " + where + " has no '" + key + "'");
    return obj.at(key);
  };
  auto integer = [&](const nlohmann::json &obj, const char *key,
                     const std::string &where) -> int64_t {
    const nlohmann::json &v = need(obj, key, where);
    if (!v.is_number_integer())
      throw Error(KILN_ERROR_FORMAT, "'" + manifestPath + "': " + where + "." +
                                         key + " must be an integer");
    return v.get<int64_t>();
  };

  int64_t version = integer(j, "format_version", "the manifest");
  if (version != kFormatVersion)
    throw Error(KILN_ERROR_FORMAT,
                "'" + dir + "' is artifact format version " +
                    std::to_string(version) + "; this runtime reads version " +
                    std::to_string(kFormatVersion) + " (recompile with kilnc)");

  const nlohmann::json &model = need(j, "model", "the manifest");
  const nlohmann::json &compile = need(j, "compile", "the manifest");
  const nlohmann::json &target = need(j, "target", "the manifest");
  const nlohmann::json &files = need(j, "files", "the manifest");
  kiln_model_info &info = m->info;
  info.vocab_size = integer(model, "vocab_size", "model");
  info.context_length = integer(model, "context_length", "model");
  info.layers = integer(model, "layers", "model");
  info.kv_heads = integer(model, "kv_heads", "model");
  info.head_dim = integer(model, "head_dim", "model");
  info.max_batch_tokens = integer(compile, "max_batch_tokens", "compile");
  info.block_size = integer(compile, "block_size", "compile");
  info.arena_bytes = integer(compile, "arena_bytes", "compile");
  info.weights_bytes = integer(compile, "weights_bytes", "compile");
  // Artifacts compiled before sliding windows freed blocks lack it.
  m->kvWindow = compile.contains("kv_window")
                    ? integer(compile, "kv_window", "compile")
                    : -1;
  if (m->kvWindow < -1)
    throw Error(KILN_ERROR_FORMAT,
                "'" + manifestPath + "': kv_window must be -1 or more");
  if (info.vocab_size <= 0 || info.context_length <= 0 || info.layers <= 0 ||
      info.kv_heads <= 0 || info.head_dim <= 0 || info.block_size <= 0 ||
      info.max_batch_tokens <= 0 || info.arena_bytes < 0)
    throw Error(KILN_ERROR_FORMAT,
                "'" + manifestPath + "': model sizes must be positive");
  if (integer(compile, "model_abi_version", "compile") !=
      KILN_MODEL_ABI_VERSION)
    throw Error(
        KILN_ERROR_FORMAT,
        "'" + dir + "' was compiled for model ABI version " +
            std::to_string(integer(compile, "model_abi_version", "compile")) +
            "; this runtime has version " +
            std::to_string(KILN_MODEL_ABI_VERSION));
  if (model.contains("eos_token_ids") && model["eos_token_ids"].is_array())
    for (const auto &id : model["eos_token_ids"])
      if (id.is_number_integer() && info.num_eos_tokens < 8)
        info.eos_token_ids[info.num_eos_tokens++] = id.get<int32_t>();

  // The CPU: architecture and every feature the code may use.
  std::string triple = need(target, "triple", "target").get<std::string>();
  m->targetCpu = need(target, "cpu", "target").get<std::string>();
#if defined(__x86_64__)
  if (triple.rfind("x86_64", 0) != 0)
#else
  if (true)
#endif
    throw Error(KILN_ERROR_UNSUPPORTED, "'" + dir + "' was compiled for " +
                                            triple + ", not for this machine");
  std::vector<std::string> missing, unknown;
  for (const auto &f : need(target, "features", "target")) {
    std::string name = f.get<std::string>();
    bool known;
    bool has = cpuHas(name, known);
    if (known && !has)
      missing.push_back(name);
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string &f : missing)
      list += (list.empty() ? "" : ", ") + f;
    throw Error(KILN_ERROR_UNSUPPORTED,
                "'" + dir + "' was compiled for CPU '" + m->targetCpu +
                    "' and needs " + list +
                    ", which this CPU lacks; recompile with kilnc --cpu=... "
                    "for this machine");
  }

  // Files: present and of the recorded size.
  auto checkFile = [&](const std::string &name) -> std::string {
    std::string path = join(dir, name);
    if (!files.contains(name))
      throw Error(KILN_ERROR_FORMAT,
                  "'" + manifestPath + "' does not list " + name);
    int64_t expected = integer(files[name], "size", "files." + name);
    int64_t actual = fileSize(path);
    if (actual < 0)
      throw Error(KILN_ERROR_NOT_FOUND, "'" + path + "' is missing");
    if (actual != expected)
      throw Error(KILN_ERROR_FORMAT,
                  "'" + path + "' has " + std::to_string(actual) +
                      " bytes but the manifest records " +
                      std::to_string(expected) +
                      (actual < expected ? " (truncated?)" : ""));
    return path;
  };
  std::string weightsPath = checkFile("weights.bin");
  std::string libraryPath = checkFile("model.so");
  if (files.contains("tokenizer.json")) {
    m->tokenizerPath = checkFile("tokenizer.json");
  }
  info.tokenizer_path = m->tokenizerPath.c_str();
  info.target_cpu = m->targetCpu.c_str();

  // Map the weights.
  m->weightsSize = static_cast<size_t>(fileSize(weightsPath));
  if (static_cast<int64_t>(m->weightsSize) < info.weights_bytes)
    throw Error(KILN_ERROR_FORMAT, "'" + weightsPath +
                                       "' is shorter than "
                                       "the compiled weights");
  if (m->weightsSize > 0) {
    int fd = ::open(weightsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw Error(KILN_ERROR_NOT_FOUND,
                  "cannot open '" + weightsPath + "': " + strerror(errno));
    m->weights = mmap(nullptr, m->weightsSize, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (m->weights == MAP_FAILED) {
      m->weights = nullptr;
      throw Error(KILN_ERROR_OUT_OF_MEMORY,
                  "cannot map '" + weightsPath + "': " + strerror(errno));
    }
  }

  // Load the code and check it is what the manifest says.
  m->library = dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m->library) {
    const char *why = dlerror();
    throw Error(KILN_ERROR_FORMAT, "cannot load '" + libraryPath +
                                       "': " + (why ? why : "unknown error"));
  }
  m->step = reinterpret_cast<kiln_model_step_fn>(
      dlsym(m->library, "kiln_model_step"));
  auto *abi =
      static_cast<const int64_t *>(dlsym(m->library, "kiln_model_abi_version"));
  auto *arena =
      static_cast<const int64_t *>(dlsym(m->library, "kiln_model_arena_bytes"));
  auto *maxTokens =
      static_cast<const int64_t *>(dlsym(m->library, "kiln_model_max_tokens"));
  if (!m->step || !abi || !arena || !maxTokens)
    throw Error(KILN_ERROR_FORMAT,
                "'" + libraryPath + "' is not a kiln model library");
  auto *kvWindow =
      static_cast<const int64_t *>(dlsym(m->library, "kiln_model_kv_window"));
  if (*abi != KILN_MODEL_ABI_VERSION || *arena != info.arena_bytes ||
      *maxTokens != info.max_batch_tokens ||
      (kvWindow ? *kvWindow : -1) != m->kvWindow)
    throw Error(KILN_ERROR_FORMAT,
                "'" + libraryPath +
                    "' does not match manifest.json "
                    "(ABI, arena, token budget or KV window differ)");
  return m;
}

} // namespace

extern "C" kiln_status_t kiln_model_open(const char *path, kiln_model_t **out) {
  if (out)
    *out = nullptr;
  if (!path || !out)
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_model_open: path and out must not be NULL");
  return kiln::guard("kiln_model_open", [&] {
    *out = openModel(path).release();
    return KILN_OK;
  });
}

extern "C" void kiln_model_free(kiln_model_t *model) { delete model; }

extern "C" kiln_status_t kiln_model_get_info(const kiln_model_t *model,
                                             kiln_model_info *info) {
  if (!model || !info)
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_model_get_info: model and info must not be NULL");
  *info = model->info;
  return KILN_OK;
}

//===----------------------------------------------------------------------===//
// Engines
//===----------------------------------------------------------------------===//

namespace {

struct Sequence {
  std::vector<int32_t> blocks;
  int64_t length = 0;
  /// The tokens in the cache (the prefix cache hashes full blocks of them).
  std::vector<int32_t> tokens;
  /// Leading full blocks already offered to the prefix cache, and the
  /// chain hash of the last of them.
  int64_t hashedBlocks = 0;
  uint64_t chainHash = 0;
  /// Leading blocks released because no later query can see them (every
  /// layer attends a sliding window); their entries in `blocks` are -1.
  int64_t freedBlocks = 0;
};

/// The chain hash of a block: its tokens and the hash of everything before
/// it (splitmix64 steps), so equal hashes mean equal prefixes up to 64-bit
/// collisions; lookups compare the tokens too.
uint64_t blockHash(uint64_t parent, const int32_t *tokens, int64_t n) {
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(parent ^ 0x6b696c6e); // "kiln"
  for (int64_t i = 0; i < n; ++i)
    h = mix(h ^ static_cast<uint32_t>(tokens[i]));
  return h;
}

struct AlignedFree {
  void operator()(void *p) const { std::free(p); }
};

/// The KV pool: anonymous pages, zeroed lazily by the kernel, so a large
/// cache costs nothing until sequences fill it.
struct PoolMemory {
  void *base = nullptr;
  size_t bytes = 0;
  PoolMemory() = default;
  PoolMemory(const PoolMemory &) = delete;
  PoolMemory &operator=(const PoolMemory &) = delete;
  ~PoolMemory() {
    if (base)
      munmap(base, bytes);
  }
  void allocate(size_t n) {
    bytes = std::max<size_t>(n, 1);
    void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      throw Error(KILN_ERROR_OUT_OF_MEMORY, "cannot reserve the KV cache (" +
                                                std::to_string(bytes >> 20) +
                                                " MiB)");
    base = p;
  }
};

void *alignedZeroed(size_t bytes, const char *what) {
  size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, rounded);
  if (!p)
    throw Error(KILN_ERROR_OUT_OF_MEMORY,
                std::string("cannot allocate the ") + what + " (" +
                    std::to_string(rounded >> 20) + " MiB)");
  std::memset(p, 0, rounded);
  return p;
}

/// The block manager. A block is free (on `freeList`), held by one or more
/// sequences (`refs` > 0), or cached: held by none but still holding the
/// keys and values of a full block of tokens some sequence computed, found
/// by its chain hash, and evicted least recently released first when a
/// block is needed and none is free.
struct BlockManager {
  int64_t numBlocks = 0, blockSize = 0;
  bool prefixCache = false;
  std::vector<int32_t> freeList;
  std::vector<int32_t> refs;
  /// Prefix cache: chain hash -> block, and per block its hash, its
  /// parent's hash and its tokens (to tell collisions from hits).
  std::unordered_map<uint64_t, int32_t> byHash;
  std::vector<uint64_t> hash, parent;
  std::vector<uint8_t> cached;
  std::vector<int32_t> tokens;
  /// Cached blocks no sequence holds, least recently released first.
  std::list<int32_t> lru;
  std::vector<std::list<int32_t>::iterator> lruPos;
  int64_t hits = 0; ///< blocks found in the prefix cache

  void init(int64_t blocks, int64_t size, bool enableCache) {
    numBlocks = blocks;
    blockSize = size;
    prefixCache = enableCache;
    freeList.resize(blocks);
    // Hand out low block ids first.
    for (int64_t i = 0; i < blocks; ++i)
      freeList[i] = static_cast<int32_t>(blocks - 1 - i);
    refs.assign(blocks, 0);
    hash.assign(blocks, 0);
    parent.assign(blocks, 0);
    cached.assign(blocks, 0);
    lruPos.resize(blocks);
    if (enableCache)
      tokens.assign(blocks * size, 0);
  }

  /// Blocks a sequence can get now: free ones and evictable cached ones.
  int64_t available() const {
    return static_cast<int64_t>(freeList.size() + lru.size());
  }

  int32_t take() {
    int32_t b;
    if (!freeList.empty()) {
      b = freeList.back();
      freeList.pop_back();
    } else {
      b = lru.front();
      lru.pop_front();
      byHash.erase(hash[b]);
      cached[b] = 0;
    }
    refs[b] = 1;
    return b;
  }

  void release(int32_t b) {
    if (--refs[b] > 0)
      return;
    if (cached[b])
      lruPos[b] = lru.insert(lru.end(), b);
    else
      freeList.push_back(b);
  }

  /// The cached block holding `toks` (blockSize tokens) after the prefix
  /// whose chain hash is `parentHash`, with its hash in `*h`; -1 if none.
  int32_t find(uint64_t parentHash, const int32_t *toks, uint64_t *h) const {
    *h = blockHash(parentHash, toks, blockSize);
    auto it = byHash.find(*h);
    if (it == byHash.end())
      return -1;
    int32_t b = it->second;
    if (parent[b] != parentHash ||
        !std::equal(toks, toks + blockSize, tokens.begin() + b * blockSize))
      return -1;
    return b;
  }

  /// Another holder for cached block `b`.
  void acquire(int32_t b) {
    if (refs[b]++ == 0)
      lru.erase(lruPos[b]);
  }

  /// Offers the full blocks of `seq` not offered yet to the cache.
  void offer(Sequence &seq) {
    if (!prefixCache)
      return;
    while ((seq.hashedBlocks + 1) * blockSize <= seq.length) {
      const int32_t *toks = seq.tokens.data() + seq.hashedBlocks * blockSize;
      int32_t b = seq.blocks[seq.hashedBlocks];
      uint64_t h = blockHash(seq.chainHash, toks, blockSize);
      if (!cached[b] && !byHash.count(h)) {
        byHash[h] = b;
        hash[b] = h;
        parent[b] = seq.chainHash;
        cached[b] = 1;
        std::copy(toks, toks + blockSize, tokens.begin() + b * blockSize);
      }
      seq.chainHash = h;
      ++seq.hashedBlocks;
    }
  }
};

} // namespace

struct kiln_engine_t {
  kiln_model_t *model = nullptr;
  std::unique_ptr<kiln::ThreadPool> pool;
  std::unique_ptr<void, AlignedFree> arena;
  PoolMemory cache;
  int64_t maxBlocksPerSeq = 0;
  BlockManager blocks;
  std::unordered_map<int64_t, Sequence> seqs;
  int64_t nextSeq = 1;
  // Step inputs, reused across steps.
  std::vector<int64_t> tokenIds, positions, logitRows;
  std::vector<int32_t> tokenSeq, seqLens, blockTables;
};

extern "C" void kiln_engine_options_init(kiln_engine_options *options) {
  if (options)
    *options = kiln_engine_options{0, 0, 1, 0};
}

extern "C" kiln_status_t kiln_engine_create(kiln_model_t *model,
                                            const kiln_engine_options *options,
                                            kiln_engine_t **out) {
  if (out)
    *out = nullptr;
  if (!model || !out)
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_engine_create: model and out must not be NULL");
  kiln_engine_options o;
  kiln_engine_options_init(&o);
  if (options)
    o = *options;
  if (o.num_threads < 0 || o.kv_cache_tokens < 0)
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_engine_create: num_threads and kv_cache_tokens "
                      "must not be negative");
  return kiln::guard("kiln_engine_create", [&] {
    const kiln_model_info &info = model->info;
    auto e = std::make_unique<kiln_engine_t>();
    e->model = model;
    e->pool = std::make_unique<kiln::ThreadPool>(o.num_threads);
    e->pool->setBatchInvariant(o.batch_invariant != 0);
    int64_t tokens =
        o.kv_cache_tokens ? o.kv_cache_tokens : 4 * info.context_length;
    int64_t numBlocks = (tokens + info.block_size - 1) / info.block_size;
    e->maxBlocksPerSeq =
        (info.context_length + info.block_size - 1) / info.block_size;
    size_t blockFloats = static_cast<size_t>(info.layers) * 2 * info.kv_heads *
                         info.block_size * info.head_dim;
    e->cache.allocate(blockFloats * sizeof(float) * numBlocks);
    e->arena.reset(alignedZeroed(info.arena_bytes, "arena"));
    e->blocks.init(numBlocks, info.block_size, o.prefix_cache != 0);
    *out = e.release();
    return KILN_OK;
  });
}

extern "C" void kiln_engine_free(kiln_engine_t *engine) { delete engine; }

extern "C" kiln_status_t kiln_engine_seq_create(kiln_engine_t *engine,
                                                int64_t *seq) {
  if (!engine || !seq)
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_engine_seq_create: engine and seq must not be "
                      "NULL");
  return kiln::guard("kiln_engine_seq_create", [&] {
    *seq = engine->nextSeq++;
    engine->seqs.emplace(*seq, Sequence{});
    return KILN_OK;
  });
}

extern "C" kiln_status_t kiln_engine_seq_free(kiln_engine_t *engine,
                                              int64_t seq) {
  if (!engine)
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_engine_seq_free: engine must not be NULL");
  auto it = engine->seqs.find(seq);
  if (it == engine->seqs.end())
    return kiln::fail(KILN_ERROR_NOT_FOUND,
                      "kiln_engine_seq_free: no sequence " +
                          std::to_string(seq));
  for (int32_t b : it->second.blocks)
    if (b >= 0)
      engine->blocks.release(b);
  engine->seqs.erase(it);
  return KILN_OK;
}

extern "C" kiln_status_t kiln_engine_seq_create_cached(kiln_engine_t *engine,
                                                       const int32_t *tokens,
                                                       int64_t num_tokens,
                                                       int64_t *seq,
                                                       int64_t *cached_tokens) {
  if (!engine || !seq || !cached_tokens || num_tokens < 0 ||
      (num_tokens > 0 && !tokens))
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_engine_seq_create_cached: engine, tokens, seq "
                      "and cached_tokens must not be NULL");
  return kiln::guard("kiln_engine_seq_create_cached", [&] {
    BlockManager &bm = engine->blocks;
    Sequence s;
    // Whole blocks, and at least the last token left to compute.
    if (bm.prefixCache)
      while ((s.hashedBlocks + 1) * bm.blockSize < num_tokens &&
             (s.hashedBlocks + 1) * bm.blockSize <=
                 engine->model->info.context_length) {
        uint64_t h;
        int32_t b =
            bm.find(s.chainHash, tokens + s.hashedBlocks * bm.blockSize, &h);
        if (b < 0)
          break;
        bm.acquire(b);
        s.blocks.push_back(b);
        s.chainHash = h;
        ++s.hashedBlocks;
        ++bm.hits;
      }
    s.length = s.hashedBlocks * bm.blockSize;
    s.tokens.assign(tokens, tokens + s.length);
    *cached_tokens = s.length;
    *seq = engine->nextSeq++;
    engine->seqs.emplace(*seq, std::move(s));
    return KILN_OK;
  });
}

extern "C" int64_t kiln_engine_cached_blocks(const kiln_engine_t *engine) {
  return engine ? static_cast<int64_t>(engine->blocks.byHash.size()) : 0;
}

extern "C" int64_t kiln_engine_seq_length(const kiln_engine_t *engine,
                                          int64_t seq) {
  if (!engine)
    return -1;
  auto it = engine->seqs.find(seq);
  return it == engine->seqs.end() ? -1 : it->second.length;
}

extern "C" int64_t kiln_engine_free_blocks(const kiln_engine_t *engine) {
  return engine ? engine->blocks.available() : 0;
}

extern "C" int64_t kiln_engine_total_blocks(const kiln_engine_t *engine) {
  return engine ? engine->blocks.numBlocks : 0;
}

extern "C" kiln_status_t kiln_engine_step(kiln_engine_t *engine,
                                          const kiln_seq_tokens *seqs,
                                          int64_t num_seqs, float *logits,
                                          size_t capacity) {
  if (!engine || !seqs || !logits || num_seqs < 1)
    return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                      "kiln_engine_step: engine, seqs and logits must not be "
                      "NULL and num_seqs must be at least 1");
  return kiln::guard("kiln_engine_step", [&] {
    const kiln_model_info &info = engine->model->info;
    if (capacity < static_cast<size_t>(num_seqs * info.vocab_size))
      return kiln::fail(KILN_ERROR_BUFFER_TOO_SMALL,
                        "kiln_engine_step: logits holds " +
                            std::to_string(capacity) + " floats; " +
                            std::to_string(num_seqs) + " rows of " +
                            std::to_string(info.vocab_size) + " need " +
                            std::to_string(num_seqs * info.vocab_size));
    // Validate everything before touching any state.
    int64_t total = 0, blocksNeeded = 0;
    std::unordered_set<int64_t> seen;
    for (int64_t i = 0; i < num_seqs; ++i) {
      const kiln_seq_tokens &s = seqs[i];
      std::string which = "kiln_engine_step: sequence " +
                          std::to_string(s.seq) + " (entry " +
                          std::to_string(i) + ")";
      auto it = engine->seqs.find(s.seq);
      if (it == engine->seqs.end())
        return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                          which + " does not exist");
      if (!seen.insert(s.seq).second)
        return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                          which + " appears twice in one step");
      if (s.num_tokens < 1 || !s.tokens)
        return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                          which + " has no tokens");
      for (int64_t t = 0; t < s.num_tokens; ++t)
        if (s.tokens[t] < 0 || s.tokens[t] >= info.vocab_size)
          return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                            which + ": token " + std::to_string(t) + " is " +
                                std::to_string(s.tokens[t]) +
                                ", outside the vocabulary of " +
                                std::to_string(info.vocab_size));
      int64_t newLength = it->second.length + s.num_tokens;
      if (newLength > info.context_length)
        return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                          which + " would hold " + std::to_string(newLength) +
                              " tokens, more than the context length " +
                              std::to_string(info.context_length));
      int64_t blocks = (newLength + info.block_size - 1) / info.block_size;
      blocksNeeded += blocks - static_cast<int64_t>(it->second.blocks.size());
      total += s.num_tokens;
    }
    if (total > info.max_batch_tokens)
      return kiln::fail(KILN_ERROR_INVALID_ARGUMENT,
                        "kiln_engine_step: " + std::to_string(total) +
                            " tokens in one step; the model was compiled "
                            "for at most " +
                            std::to_string(info.max_batch_tokens) +
                            " (kilnc --max-batch-tokens)");
    if (blocksNeeded > engine->blocks.available())
      return kiln::fail(
          KILN_ERROR_OUT_OF_MEMORY,
          "kiln_engine_step: KV cache exhausted: the step needs " +
              std::to_string(blocksNeeded) + " more blocks, " +
              std::to_string(engine->blocks.available()) + " of " +
              std::to_string(engine->blocks.numBlocks) + " are free");

    // Assemble the step.
    engine->tokenIds.resize(total);
    engine->positions.resize(total);
    engine->tokenSeq.resize(total);
    engine->seqLens.resize(num_seqs);
    engine->logitRows.resize(num_seqs);
    engine->blockTables.assign(num_seqs * engine->maxBlocksPerSeq, 0);
    int64_t t = 0;
    for (int64_t i = 0; i < num_seqs; ++i) {
      const kiln_seq_tokens &s = seqs[i];
      Sequence &seq = engine->seqs[s.seq];
      int64_t newLength = seq.length + s.num_tokens;
      while (static_cast<int64_t>(seq.blocks.size()) * info.block_size <
             newLength)
        seq.blocks.push_back(engine->blocks.take());
      for (int64_t k = 0; k < s.num_tokens; ++k, ++t) {
        engine->tokenIds[t] = s.tokens[k];
        engine->positions[t] = seq.length + k;
        engine->tokenSeq[t] = static_cast<int32_t>(i);
      }
      engine->logitRows[i] = t - 1;
      engine->seqLens[i] = static_cast<int32_t>(newLength);
      std::copy(seq.blocks.begin(), seq.blocks.end(),
                engine->blockTables.begin() + i * engine->maxBlocksPerSeq);
    }
    kiln_step_args args{};
    args.num_tokens = total;
    args.token_ids = engine->tokenIds.data();
    args.positions = engine->positions.data();
    args.token_seq = engine->tokenSeq.data();
    args.num_seqs = num_seqs;
    args.seq_lens = engine->seqLens.data();
    args.block_tables = engine->blockTables.data();
    args.max_blocks_per_seq = engine->maxBlocksPerSeq;
    args.kv_cache = static_cast<float *>(engine->cache.base);
    args.num_logit_rows = num_seqs;
    args.logit_rows = engine->logitRows.data();
    args.logits = logits;
    args.arena = engine->arena.get();
    args.weights = engine->model->weights;
    args.pool = engine->pool.get();
    int rc = engine->model->step(&args, kiln_cpu_kernels());
    if (rc != 0)
      return kiln::fail(
          KILN_ERROR_INTERNAL,
          "kiln_engine_step: the compiled step failed with code " +
              std::to_string(rc));
    for (int64_t i = 0; i < num_seqs; ++i) {
      Sequence &seq = engine->seqs[seqs[i].seq];
      seq.length = engine->seqLens[i];
      seq.tokens.insert(seq.tokens.end(), seqs[i].tokens,
                        seqs[i].tokens + seqs[i].num_tokens);
      engine->blocks.offer(seq);
      // The next query is at seq.length and sees keys from
      // seq.length - kvWindow on: blocks wholly before that are free (the
      // attention kernel never reads their table entries).
      if (int64_t w = engine->model->kvWindow; w >= 0)
        while ((seq.freedBlocks + 1) * info.block_size <= seq.length - w) {
          engine->blocks.release(seq.blocks[seq.freedBlocks]);
          seq.blocks[seq.freedBlocks++] = -1;
        }
    }
    return KILN_OK;
  });
}

extern "C" int32_t kiln_argmax(const float *logits, int64_t n) {
  if (!logits || n < 1)
    return -1;
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best])
      best = i;
  return static_cast<int32_t>(best);
}
