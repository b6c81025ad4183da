/*
 * SHA-256 of a SharedArrayBuffer's bytes on libuv's thread pool, without copying them.
 *
 * Why native: SigV4 signs the SHA-256 of every upload part over plain HTTP. Node hashes either on the
 * calling thread (createHash: the event loop stops for every 8 MiB part) or on the thread pool after
 * copying the input (WebCrypto, which also refuses shared memory). A worker thread reads shared memory in
 * place, but it is a whole Node environment: 12-27 MiB of RSS on Node 24 (bench, 64 concurrent uploads).
 * This addon keeps the input where it is and borrows a pool thread for the few ms of each digest.
 *
 * OpenSSL comes from the Node binary itself (its symbols are exported to addons), as for ssh2's binding.
 * The JS side (src/storage/s3/async-sha256.ts) keeps a reference to the buffer until the promise settles
 * and falls back to the worker thread when this addon is missing.
 */
#include <node_api.h>
#include <openssl/evp.h>
#include <stdlib.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep; /* the typed array, alive while a pool thread reads its memory */
  const unsigned char *data;
  size_t length;
  unsigned char digest[32];
  int ok;
} Job;

static void execute(napi_env env, void *arg) {
  (void)env;
  Job *job = arg;
  unsigned int len = 0;
  job->ok = EVP_Digest(job->data, job->length, job->digest, &len, EVP_sha256(), NULL) == 1 && len == 32;
}

static void complete(napi_env env, napi_status status, void *arg) {
  Job *job = arg;
  napi_value result;
  if (status == napi_ok && job->ok) {
    void *out;
    napi_create_buffer_copy(env, 32, job->digest, &out, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message;
    napi_create_string_utf8(env, status == napi_ok ? "EVP_Digest failed" : "digest cancelled", NAPI_AUTO_LENGTH,
                            &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* digest(view: Uint8Array): Promise<Buffer> */
static napi_value digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_typed = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, NULL, "digest expects a Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "digest expects a Uint8Array");
    return NULL;
  }
  Job *job = calloc(1, sizeof(Job));
  if (!job) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->data = data;
  job->length = length;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_reference(env, argv[0], 1, &job->keep);
  napi_create_string_utf8(env, "sha256", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "digest", NAPI_AUTO_LENGTH, digest, NULL, &fn);
  napi_set_named_property(env, exports, "digest", fn);
  return exports;
}
