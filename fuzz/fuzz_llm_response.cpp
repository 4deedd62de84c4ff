// libFuzzer target: the OpenAI-compatible chat-completion parser and the answer cleaning, on
// arbitrary response bodies.
#include <cstddef>
#include <cstdint>
#include <string>

#include "asdcap/error.hpp"
#include "explain/llm_response.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::string model;
    const std::string answer =
        asdcap::explain_detail::parse_chat_completion(std::string(reinterpret_cast<const char*>(data), size), &model);
    // An accepted answer is never empty and carries no control character but line breaks and tabs.
    if (answer.empty()) __builtin_trap();
    for (unsigned char c : answer)
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) __builtin_trap();
  } catch (const asdcap::Error&) {
  }
  return 0;
}
