/*===- service.c - a C service on the kiln scheduler ---------------------===*
 *
 *   kiln-example-service ARTIFACT.kiln [--threads N] [--max-tokens N]
 *       < prompts.txt
 *
 * What a service does with kiln, in C11 and pthreads, linking only the
 * runtime: every line of stdin is a prompt, and every prompt gets its own
 * client thread, as each connection of a server would. A client encodes
 * its prompt, submits it to the one scheduler all clients share and waits
 * for the answer; the scheduler batches whatever is in flight and streams
 * each request's text through the event callback into that request's
 * buffer. Decoding is greedy, so the output of a prompt is what it would
 * be alone (`kiln run ARTIFACT --prompt P --max-tokens N` prints the same).
 *
 * When all have finished, one JSON object per prompt, in input order:
 *
 *   {"index": 0, "finish": "length", "prompt_tokens": 6,
 *    "completion_tokens": 32, "cached_prompt_tokens": 0,
 *    "ttft_seconds": 0.0412, "text": "..."}
 *
 * (on one line; "finish" is stop, length, cancelled or error, the latter
 * with an "error" message), and the scheduler's counters on stderr. Errors
 * also go to stderr and make the exit status 1; bad arguments or input exit
 * with 2.
 *
 *===----------------------------------------------------------------------===*/

#define _POSIX_C_SOURCE 200809L /* getline, nanosleep */

#include <kiln/kiln.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const program = "kiln-example-service";

/* What every client shares. Immutable while the clients run. */
typedef struct service {
  kiln_scheduler_t *scheduler;
  const kiln_tokenizer_t *tokenizer; /* thread-safe: clients encode at once */
  kiln_sampling_params params;
} service;

/* One prompt and its answer. Until `done` is set (under `lock`), only the
 * scheduler thread touches the answer; afterwards only the client. */
typedef struct request {
  const service *svc;
  char *prompt;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t finished;
  int done;
  char *text; /* the streamed output, NUL-terminated once done */
  size_t length, capacity;
  kiln_finish_reason finish;
  kiln_usage usage;
  char error[512]; /* why it failed; "" if it did not */
} request;

/* Appends `n` bytes to the request's text, keeping room for a NUL. */
static int append(request *r, const char *bytes, size_t n) {
  if (n == 0) /* an event without text; `bytes` may be NULL */
    return 1;
  if (r->length + n + 1 > r->capacity) {
    size_t capacity = 2 * r->capacity > r->length + n + 1
                          ? 2 * r->capacity
                          : r->length + n + 1 + 256;
    char *text = realloc(r->text, capacity);
    if (!text)
      return 0;
    r->text = text;
    r->capacity = capacity;
  }
  memcpy(r->text + r->length, bytes, n);
  r->length += n;
  r->text[r->length] = '\0';
  return 1;
}

/* Events arrive on the scheduler thread, in order, one per token and a
 * final one. Every request waits while a callback runs, so it only copies. */
static void on_event(const kiln_event *event, void *user_data) {
  request *r = user_data;
  if (!append(r, event->text, event->text_length) && !r->error[0])
    snprintf(r->error, sizeof r->error, "out of memory for the output text");
  if (event->finish == KILN_FINISH_NONE)
    return;
  pthread_mutex_lock(&r->lock);
  r->finish = r->error[0] ? KILN_FINISH_ERROR : event->finish;
  r->usage = event->usage;
  if (event->finish == KILN_FINISH_ERROR)
    snprintf(r->error, sizeof r->error, "%s", event->error);
  r->done = 1;
  pthread_cond_signal(&r->finished);
  pthread_mutex_unlock(&r->lock);
}

/* Records a failed kiln call. kiln_last_error_message() is per thread, so
 * it is read here, on the thread that made the call. */
static void fail(request *r, const char *call, kiln_status_t status) {
  snprintf(r->error, sizeof r->error, "%s: %s: %s", call,
           kiln_status_string(status), kiln_last_error_message());
  r->finish = KILN_FINISH_ERROR;
}

/* A client: encode, submit, wait for the final event. */
static void *client(void *arg) {
  request *r = arg;
  const service *svc = r->svc;

  /* Byte-level BPE gives at most one id per byte plus the post-processor's
   * few; other tokenizers may need more, which encode reports. */
  size_t len = strlen(r->prompt), n = 0, capacity = len + 16;
  int32_t *ids = malloc(capacity * sizeof *ids);
  kiln_status_t s = KILN_ERROR_OUT_OF_MEMORY;
  if (ids)
    s = kiln_tokenizer_encode(svc->tokenizer, r->prompt, len,
                              /*add_special_tokens=*/1, ids, capacity, &n);
  if (s == KILN_ERROR_BUFFER_TOO_SMALL) {
    int32_t *grown = realloc(ids, n * sizeof *ids);
    s = KILN_ERROR_OUT_OF_MEMORY;
    if (grown) {
      ids = grown;
      s = kiln_tokenizer_encode(svc->tokenizer, r->prompt, len, 1, ids, n, &n);
    }
  }
  if (s != KILN_OK) {
    fail(r, "kiln_tokenizer_encode", s);
    free(ids);
    return NULL;
  }

  /* Submit copies the prompt. A full queue is not an error: retry. */
  uint64_t id = 0;
  while ((s = kiln_scheduler_submit(svc->scheduler, ids, (int64_t)n,
                                    &svc->params, on_event, r, &id)) ==
         KILN_ERROR_BUSY) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  free(ids);
  if (s != KILN_OK) {
    fail(r, "kiln_scheduler_submit", s);
    return NULL;
  }

  pthread_mutex_lock(&r->lock);
  while (!r->done)
    pthread_cond_wait(&r->finished, &r->lock);
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* Writes `n` bytes as a JSON string (kiln's text is valid UTF-8). */
static void print_json_string(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c == '\n')
      fputs("\\n", stdout);
    else if (c == '\t')
      fputs("\\t", stdout);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static int usage_error(const char *message, const char *what) {
  fprintf(stderr,
          "%s: %s%s\nusage: %s ARTIFACT.kiln [--threads N] [--max-tokens N] "
          "< prompts (one per line)\n",
          program, message, what, program);
  return 2;
}

/* Parses a whole decimal number in [min, max] into `*out`. */
static int parse_int(const char *text, long min, long max, long *out) {
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno || end == text || *end || value < min || value > max)
    return 0;
  *out = value;
  return 1;
}

static void free_prompts(char **prompts, size_t count) {
  for (size_t i = 0; i < count; ++i)
    free(prompts[i]);
  free(prompts);
}

/* Reads stdin into `*out`, one prompt per line ("\n" or "\r\n"). */
static int read_prompts(char ***out, size_t *count) {
  char **prompts = NULL, *line = NULL;
  size_t n = 0, line_capacity = 0;
  ssize_t length;
  int ok = 1;
  while (ok && (length = getline(&line, &line_capacity, stdin)) != -1) {
    while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r'))
      line[--length] = '\0';
    char **grown = NULL;
    if (length == 0) {
      fprintf(stderr, "%s: stdin line %zu is empty; give one prompt per line\n",
              program, n + 1);
      ok = 0;
    } else if (!(grown = realloc(prompts, (n + 1) * sizeof *grown)) ||
               !(grown[n] = strdup(line))) {
      fprintf(stderr, "%s: out of memory reading stdin\n", program);
      ok = 0;
    }
    if (grown)
      prompts = grown;
    n += ok;
  }
  free(line);
  if (ok && n == 0) {
    fprintf(stderr, "%s: no prompts on stdin (one per line)\n", program);
    ok = 0;
  }
  if (!ok) {
    free_prompts(prompts, n);
    return 0;
  }
  *out = prompts;
  *count = n;
  return 1;
}

/* Reports a failed kiln call of main's. */
static void report(const char *call, kiln_status_t status) {
  fprintf(stderr, "%s: %s: %s: %s\n", program, call, kiln_status_string(status),
          kiln_last_error_message());
}

/* Serves the prompts, a client thread each, and prints the answers in
 * order. Returns the exit status. */
static int serve(const service *svc, char **prompts, size_t count) {
  request *requests = calloc(count, sizeof *requests);
  if (!requests) {
    fprintf(stderr, "%s: out of memory\n", program);
    return 1;
  }
  size_t started = 0;
  for (; started < count; ++started) {
    request *r = &requests[started];
    r->svc = svc;
    r->prompt = prompts[started];
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->finished, NULL);
    int err = pthread_create(&r->thread, NULL, client, r);
    if (err) {
      fprintf(stderr, "%s: cannot start a client thread: %s\n", program,
              strerror(err));
      pthread_mutex_destroy(&r->lock);
      pthread_cond_destroy(&r->finished);
      break;
    }
  }
  int status = started == count ? 0 : 1;
  for (size_t i = 0; i < started; ++i)
    pthread_join(requests[i].thread, NULL);

  for (size_t i = 0; i < started; ++i) {
    request *r = &requests[i];
    printf("{\"index\": %zu, \"finish\": \"%s\"", i,
           kiln_finish_reason_string(r->finish));
    if (r->finish == KILN_FINISH_ERROR) {
      fprintf(stderr, "%s: prompt %zu: %s\n", program, i + 1, r->error);
      fputs(", \"error\": ", stdout);
      print_json_string(r->error, strlen(r->error));
      status = 1;
    } else {
      printf(", \"prompt_tokens\": %" PRId64 ", \"completion_tokens\": %" PRId64
             ", \"cached_prompt_tokens\": %" PRId64 ", \"ttft_seconds\": %.4f",
             r->usage.prompt_tokens, r->usage.completion_tokens,
             r->usage.cached_prompt_tokens, r->usage.ttft_seconds);
    }
    fputs(", \"text\": ", stdout);
    print_json_string(r->text ? r->text : "", r->length);
    puts("}");
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->finished);
    free(r->text);
  }
  free(requests);
  return status;
}

int main(int argc, char **argv) {
  const char *artifact = NULL;
  long threads = 0, max_tokens = 32;
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    int has_value = i + 1 < argc;
    if (!strcmp(arg, "--threads") && has_value) {
      if (!parse_int(argv[++i], 0, 1024, &threads))
        return usage_error("--threads must be in [0, 1024] (0: one kernel "
                           "thread per core), not ",
                           argv[i]);
    } else if (!strcmp(arg, "--max-tokens") && has_value) {
      if (!parse_int(argv[++i], 1, 1 << 20, &max_tokens))
        return usage_error("--max-tokens must be in [1, 1048576], not ",
                           argv[i]);
    } else if (!strcmp(arg, "--threads") || !strcmp(arg, "--max-tokens")) {
      return usage_error(arg, " needs a value");
    } else if (arg[0] == '-') {
      return usage_error("unknown option ", arg);
    } else if (artifact) {
      return usage_error("more than one artifact: ", arg);
    } else {
      artifact = arg;
    }
  }
  if (!artifact)
    return usage_error("no artifact given", "");

  char **prompts = NULL;
  size_t count = 0;
  if (!read_prompts(&prompts, &count))
    return 2;

  int status = 1;
  kiln_status_t s;
  kiln_model_t *model = NULL;
  kiln_model_info info;
  kiln_tokenizer_t *tokenizer = NULL;
  kiln_scheduler_options options;
  kiln_scheduler_stats stats;
  service svc = {0};
  if ((s = kiln_model_open(artifact, &model)) != KILN_OK) {
    report("kiln_model_open", s);
    goto done;
  }
  if ((s = kiln_model_get_info(model, &info)) != KILN_OK) {
    report("kiln_model_get_info", s);
    goto done;
  }
  if (!info.tokenizer_path[0]) {
    fprintf(stderr, "%s: %s has no tokenizer.json to encode the prompts\n",
            program, artifact);
    status = 2;
    goto done;
  }
  /* The scheduler loads the tokenizer too, for the events' text; this one
   * is the clients', to encode. */
  if ((s = kiln_tokenizer_load(info.tokenizer_path, &tokenizer)) != KILN_OK) {
    report("kiln_tokenizer_load", s);
    goto done;
  }
  svc.tokenizer = tokenizer;
  kiln_scheduler_options_init(&options);
  options.num_threads = (int32_t)threads;
  if ((s = kiln_scheduler_create(model, &options, &svc.scheduler)) != KILN_OK) {
    report("kiln_scheduler_create", s);
    goto done;
  }
  kiln_sampling_params_init(&svc.params);
  svc.params.temperature = 0; /* greedy */
  svc.params.max_tokens = max_tokens;

  status = serve(&svc, prompts, count);

  if ((s = kiln_scheduler_get_stats(svc.scheduler, &stats)) != KILN_OK) {
    report("kiln_scheduler_get_stats", s);
    status = 1;
    goto done;
  }
  fprintf(stderr,
          "%s: %" PRId64 " steps, %" PRId64 " prompt tokens (%" PRId64
          " cached), %" PRId64 " generated\n",
          program, stats.steps, stats.prompt_tokens, stats.cached_prompt_tokens,
          stats.generated_tokens);

done:
  /* Every client has its answer, so nothing is in flight any more. */
  kiln_scheduler_free(svc.scheduler);
  kiln_tokenizer_free(tokenizer);
  kiln_model_free(model);
  free_prompts(prompts, count);
  return status;
}
