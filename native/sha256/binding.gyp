{
  "targets": [
    {
      "target_name": "sha256",
      "sources": ["sha256.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
