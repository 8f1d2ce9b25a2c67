{
  "variables": {
    "objpool_portable%": 0
  },
  "targets": [
    {
      "target_name": "objpool",
      "sources": ["native/addon.cc", "native/registry.cc", "native/waiting.cc", "native/channels.cc", "native/segment.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-fvisibility=hidden", "-O3"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-fvisibility=hidden", "-O3", "-Wall", "-Wextra"],
      "conditions": [
        ["OS == 'linux' and objpool_portable == 1", {
          "sources": ["native/glibc_compat.cc"],
          "ldflags": ["-static-libstdc++", "-Wl,--exclude-libs,ALL", "-Wl,--gc-sections", "-Wl,--wrap=pthread_create", "-Wl,--wrap=pthread_join", "-Wl,--no-as-needed", "-l:libpthread.so.0"]
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++20",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++20"] } }
    }
  ]
}
